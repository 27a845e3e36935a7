"""The same-run baseline of ``serve_load.py``: a plain FastAPI endpoint answering a fixed 10-item
list on recsmith's recommendation path, served by uvicorn with the same workers and driven by the
same load generator and connections. What it serves is the floor of any FastAPI server on this
machine (HTTP parsing, routing, JSON), so recsmith's figures as ratios to it say how much the
engine costs, whatever the VM.

    uvicorn plain_fastapi:app --app-dir benchmarks --workers 2 --no-access-log --port 8001
"""

from __future__ import annotations

from fastapi import FastAPI

app = FastAPI()

ITEMS = [{"item_id": f"item-{i}", "score": 1.0 - i / 10} for i in range(10)]


@app.get("/v1/users/{user_id}/recommendations")
def recommendations(user_id: str, k: int = 10) -> dict[str, object]:
    """A fixed list, whoever asks."""
    return {"user_id": user_id, "items": ITEMS[:k]}


@app.get("/health/ready")
def ready() -> dict[str, str]:
    return {"status": "ok"}
