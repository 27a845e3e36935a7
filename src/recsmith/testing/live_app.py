"""A served pipeline behind FastAPI's test client, for tests that drive the whole request path
(decision log, attribution, bandit state) and then read what it logged. Shared here rather than
imported from one test module into another, which only works when pytest runs from the root."""

from __future__ import annotations

from fastapi.testclient import TestClient

from recsmith.config import Settings
from recsmith.decisions.record import Decision
from recsmith.pipeline.runtime import Pipeline
from recsmith.serving import create_api_key, create_app
from recsmith.store.open import open_store


def serve(pipeline: Pipeline, url: str) -> tuple[TestClient, dict[str, str]]:
    """A client of an app serving ``pipeline`` over the store at ``url``, and the headers of a
    key with every scope a test needs (read, ingest, admin)."""
    store = open_store(url)
    _, secret = create_api_key(store, "t", ["read", "ingest", "admin"])
    store.close()
    settings = Settings(store={"url": url}, serving={"max_batch": 50})
    return TestClient(create_app(settings, bundle=pipeline)), {"Authorization": f"Bearer {secret}"}


def logged(client: TestClient, rid: str) -> Decision:
    """The decision the app logged for recommendation ``rid``, pending or already written."""
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    found = runtime.decisions.pending(rid) or runtime.store.get_decision(rid)
    assert found is not None, f"no decision logged for {rid}"
    return found
