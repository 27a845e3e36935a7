"""A release with a store cut (``recsmith.release_cut``) reads only a known user's events since the
cut per request, and answers exactly what reading every stored item answers: the same release
without its cut, served beside it on the same store, is the oracle, and every list must hold no
item the user has (training events, events since, from this worker or another)."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pandas as pd
from fastapi.testclient import TestClient

from recsmith.config import EventSettings, Settings
from recsmith.pipeline.artifact import train_pipeline
from recsmith.pipeline.config import PipelineConfig
from recsmith.pipeline.runtime import Pipeline
from recsmith.release_cut import MANIFEST_KEY, StoreCut, store_identity
from recsmith.serving import create_app
from recsmith.store.base import EventStore
from recsmith.store.ingest import ingest_events

STORES = ("sqlite", "postgres")  # each test runs on both (conftest)

Headers = dict[str, dict[str, str]]
N_USERS, N_ITEMS = 40, 50  # conftest's training events; k = N_ITEMS lists every item allowed


def _trained_from(store: EventStore, records: list[dict[str, Any]]) -> Pipeline:
    """``records`` stored, then a pipeline trained on every stored event, as ``train --store``
    does, with its cut taken after they were stored (no margin: a test cannot wait 10 minutes)."""
    ingest_events(store, records, EventSettings(), source="test")
    time.sleep(0.002)
    cut = StoreCut(store_identity(store), time.time_ns() // 1000)
    time.sleep(0.002)
    frame = pd.concat(list(store.scan()), ignore_index=True)
    config = PipelineConfig.model_validate(
        {
            "retrieval": {"sources": [{"name": "knn", "model": "itemknn", "quota": 30}]},
            "ranking": {"enabled": False},
        }
    )
    pipeline = train_pipeline(config, frame, dict(EventSettings().weights))
    cut.vouch(pipeline, frame)
    assert pipeline.manifest[MANIFEST_KEY] == {
        "store": store_identity(store),
        "received_since_us": cut.received_since_us,
    }
    return pipeline


def _without_cut(pipeline: Pipeline) -> Pipeline:
    """The same release with no cut: each request reads the user's whole stored history."""
    out = copy.copy(pipeline)
    out.bundle = copy.copy(pipeline.bundle)
    out.bundle.manifest = {k: v for k, v in pipeline.manifest.items() if k != MANIFEST_KEY}
    return out


@contextmanager
def _apps(settings: Settings, store: EventStore, pipeline: Pipeline) -> Iterator[Any]:
    """Two server processes' apps on one store: the release with its cut, and without."""
    with (
        TestClient(create_app(settings, bundle=pipeline, store=store)) as cut,
        TestClient(create_app(settings, bundle=_without_cut(pipeline), store=store)) as full,
    ):
        yield cut, full


def _listed(client: TestClient, keys: Headers, user: str) -> list[str]:
    response = client.get(f"/v1/users/{user}/recommendations?k={N_ITEMS}", headers=keys["read"])
    assert response.status_code == 200, response.text
    return [item["item_id"] for item in response.json()["items"]]


def _had(records: list[dict[str, Any]], user: str) -> set[str]:
    return {r["item_id"] for r in records if r.get("user_id") == user}


def test_every_known_users_list_is_the_one_every_stored_item_gives(
    settings: Settings, store: EventStore, keys: Headers, training_records: list[dict[str, Any]]
) -> None:
    pipeline = _trained_from(store, training_records)
    with _apps(settings, store, pipeline) as (cut, full):
        for user in [f"u{n}" for n in range(N_USERS)]:
            listed = _listed(cut, keys, user)
            assert listed == _listed(full, keys, user), user
            assert listed and not set(listed) & _had(training_records, user), user


def test_an_event_stored_by_another_process_is_excluded_at_once(
    settings: Settings,
    store: EventStore,
    keys: Headers,
    training_records: list[dict[str, Any]],
    make_event: Any,
) -> None:
    pipeline = _trained_from(store, training_records)
    with _apps(settings, store, pipeline) as (cut, full):
        first, second, third = _listed(cut, keys, "u3")[:3]
        # acknowledged by another worker (the cut app's online state never hears of it) ...
        posted = full.post(
            "/v1/events",
            json=[make_event(user_id="u3", item_id=first, event_type="view")],
            headers=keys["ingest"],
        )
        assert posted.status_code == 200 and posted.json()["accepted"] == 1, posted.text
        # ... and imported by another process, with a timestamp from before the training
        old = make_event(user_id="u3", item_id=second, event_type="purchase", timestamp=1.0e9)
        ingest_events(store, [old], EventSettings(), source="import")
        listed = _listed(cut, keys, "u3")
        assert first not in listed and second not in listed and third in listed
        # a user the release does not know, stored by another process: every stored item
        newcomer = [make_event(user_id="newcomer", item_id=item) for item in (first, third)]
        ingest_events(store, newcomer, EventSettings(), source="import")
        listed = _listed(cut, keys, "newcomer")
        assert first not in listed and third not in listed
    # processes started now (no online state of their own): the same lists, item for item
    with _apps(settings, store, pipeline) as (cut, full):
        for user in ("u3", "newcomer", "u4"):
            assert _listed(cut, keys, user) == _listed(full, keys, user), user


def test_an_erased_user_gets_the_list_reading_everything_gives(
    settings: Settings, store: EventStore, keys: Headers, training_records: list[dict[str, Any]]
) -> None:
    pipeline = _trained_from(store, training_records)
    with _apps(settings, store, pipeline) as (cut, full):
        erased = cut.delete("/v1/users/u5", headers=keys["admin"])
        assert erased.status_code == 200, erased.text
        answer = cut.get(f"/v1/users/u5/recommendations?k={N_ITEMS}", headers=keys["read"])
        assert answer.json()["not_personalised"]
        assert _listed(cut, keys, "u5") == _listed(full, keys, "u5")
