"""A shadow thread keeps its store connection only while its release may read the stored items
again: in time order, or weighed for an unknown user's history (``ModelBundle.weighs_histories``).
A release that can never weigh a history (iALS: no history scoring, no user tower) lets go of
it, as before issue #15's weighed read, so a PostgreSQL server does not hold an idle connection
a process for the life of the shadow (rv31t's finding 4)."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from recsmith.bundle import ModelBundle
from recsmith.config import EventSettings, LifecycleSettings
from recsmith.features.interactions import Interactions
from recsmith.lifecycle.shadow import ShadowMetrics, ShadowRunner
from recsmith.models.registry import create
from recsmith.store.sqlite import SQLiteStore
from recsmith.testing.contracts import event, frame


@pytest.mark.parametrize(
    ("model", "keeps"),
    [("ials", False), ("popular", False), ("ease", True), ("itemknn", True)],
)
def test_only_a_release_that_can_weigh_a_history_keeps_the_connection(
    model: str, keeps: bool, tmp_path: Path
) -> None:
    """By hand: EASE and item-kNN score a visitor's items (their history, weighed), iALS and
    popularity never do."""
    events = frame([event(f"i{n % 9}", user=f"u{n % 5}", h=n) for n in range(60)])
    data = Interactions.from_events(events, dict(EventSettings().weights))
    bundle = ModelBundle.train(data, create(model))
    store = SQLiteStore(tmp_path / "s.sqlite")
    try:
        store.user_items("u0")  # this thread's connection, as a shadow's read opens it
        runner = ShadowRunner(
            None, LifecycleSettings(), ShadowMetrics(CollectorRegistry()), store=store
        )
        runner._bundle, runner._reading = bundle, True
        runner._let_go_of_the_store()
        assert (store._local.conn is not None) is keeps and runner._reading is keeps
    finally:
        store.close()
