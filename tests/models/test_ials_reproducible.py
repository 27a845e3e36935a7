"""iALS is bit-reproducible: the same events give the same factors for every id, run after run
in separate processes, whatever order the events come in (``models/als.py``).

Each training is a real ``recsmith train --model ials`` in its own process (implicit, its
threads and BLAS as a user runs them); the oracle is the saved arrays' bytes, compared id by id.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from recsmith.bundle import ModelBundle

RECSMITH = (sys.executable, "-m", "recsmith")


def _events(n_users: int = 240, n_items: int = 90, per_user: int = 14) -> pd.DataFrame:
    """Ratings with structure (two taste groups over two halves of the catalogue, so the factors
    have something to learn), one event per second."""
    rng = np.random.default_rng(7)
    rows = []
    for u in range(n_users):
        half = rng.random(n_items) < 0.5 if u % 2 else np.ones(n_items, bool)
        pool = np.flatnonzero(half if u % 2 else np.arange(n_items) < n_items // 2)
        for item in rng.choice(pool, per_user, replace=False):
            rows.append((f"u{u}", f"i{item}", "rating", float(rng.integers(1, 6))))
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "event_type", "value"])
    seconds = pd.Series(np.arange(len(frame)), dtype="int64")
    frame["timestamp"] = (
        pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(seconds, "s")
    ).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return frame


def _train(events: pd.DataFrame, tmp: Path, name: str) -> Path:
    data, out = tmp / f"{name}.csv", tmp / name
    events.to_csv(data, index=False)
    subprocess.run(
        [*RECSMITH, "-q", "train", "--data", str(data), "--model", "ials", "--out", str(out)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return out


def _by_id(model_dir: Path) -> dict[str, bytes]:
    """Each factor matrix's bytes with its rows in id order."""
    bundle = ModelBundle.load(model_dir)
    users = np.argsort(bundle.users.to_array(), kind="stable")
    items = np.argsort(bundle.items.to_array(), kind="stable")
    model = bundle.model
    return {
        "users": model.user_factors_[users].tobytes(),  # type: ignore[attr-defined]
        "items": model.item_factors_[items].tobytes(),  # type: ignore[attr-defined]
    }


def _arrays(model_dir: Path) -> dict[str, str]:
    """sha256 of every saved file but the manifest (which records the time of training)."""
    return {
        str(p.relative_to(model_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(model_dir.rglob("*"))
        if p.is_file() and p.name != "manifest.json"
    }


def test_the_same_events_in_any_order_train_bit_identical_factors(tmp_path: Path) -> None:
    events = _events()
    first = _train(events, tmp_path, "first")
    again = _train(events, tmp_path, "again")
    shuffled = _train(events.sample(frac=1.0, random_state=3), tmp_path, "shuffled")
    reversed_ = _train(events.iloc[::-1], tmp_path, "reversed")
    assert _arrays(first) == _arrays(again)  # the same file: the same release files
    expected = _by_id(first)
    assert _by_id(shuffled) == expected
    assert _by_id(reversed_) == expected
