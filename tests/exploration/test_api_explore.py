"""An exploring pipeline behind a live server (HTTP, SQLite and PostgreSQL): the decision log holds
the true propensities, a recommendation id replays to the same list, attributed clicks reach the
shared bandit counts, and the log exported for off-policy evaluation estimates a policy the
server never ran (the deterministic one) correctly — where propensities of 1 would not."""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from recsmith.cli.app import app as cli
from recsmith.config import EventSettings, Settings
from recsmith.events.schema import Item
from recsmith.exploration.explorer import EXPLORED, ExploreRequest
from recsmith.pipeline.artifact import train_pipeline
from recsmith.pipeline.config import PipelineConfig
from recsmith.pipeline.runtime import Pipeline
from recsmith.serving import create_api_key, create_app
from recsmith.store.base import EventStore

EPSILON, SLOT, K = 0.5, 2, 4
NEW = ("new-a", "new-b", "new-c")


@pytest.fixture(scope="module")
def pipeline(simulated: tuple[pd.DataFrame, list[Item]]) -> Pipeline:
    """Three items created an hour ago (nobody has touched them: the new-arrival pool), and an
    ε = 0.5 slot at position 2."""
    events, items = simulated
    fresh = [
        Item(item_id=i, categories=["books"], created_at=datetime.now(UTC) - timedelta(hours=1))
        for i in NEW
    ]
    config = PipelineConfig.model_validate(
        {
            "retrieval": {"sources": [{"name": "knn", "model": "itemknn", "quota": 30}]},
            "ranking": {"enabled": False},
            "explore": {"policy": "epsilon", "epsilon": EPSILON, "slots": [SLOT]},
        }
    )
    return train_pipeline(config, events, dict(EventSettings().weights), items=[*items, *fresh])


@pytest.fixture
def served(
    backend: tuple[EventStore, str], pipeline: Pipeline
) -> Iterator[tuple[TestClient, EventStore, str, dict[str, str]]]:
    store, url = backend
    _, secret = create_api_key(store, "t", ["read", "ingest", "admin"])
    settings = Settings(store={"url": url}, serving={"max_batch": 50})
    with TestClient(create_app(settings, bundle=pipeline, store=store)) as client:  # type: ignore[arg-type]
        yield client, store, url, {"Authorization": f"Bearer {secret}"}


def test_logged_propensities_replay_and_feed_off_policy_evaluation(
    served: tuple[TestClient, EventStore, str, dict[str, str]],
    pipeline: Pipeline,
    tmp_path: Path,
) -> None:
    client, store, url, auth = served
    users = [f"u{n:04d}" for n in range(1, 121)]
    bodies = [
        client.get(f"/v1/users/{u}/recommendations?k={K}", headers=auth).json() for u in users
    ]
    # the deterministic list for each user: what the server would show without [explore]
    plain = pipeline.answer(users, K, extra_seen=[[] for _ in users], recent=[[] for _ in users])
    clicks: list[dict[str, Any]] = []
    explored = 0
    for user, body, det in zip(users, bodies, plain.lists.item_ids, strict=True):
        shown = [i["item_id"] for i in body["items"]]
        assert len(shown) == K
        # a recommendation id replays to the same list (its draws are seeded by it)
        again = pipeline.answer(
            [user],
            K,
            extra_seen=[[]],
            recent=[[]],
            explore=ExploreRequest([body["recommendation_id"]]),
        )
        assert list(again.lists.item_ids[0]) == shown
        was_explored = shown[SLOT - 1] in NEW
        explored += was_explored
        assert [s for n, s in enumerate(shown) if n != SLOT - 1] == [
            s for n, s in enumerate(det) if n != SLOT - 1
        ]
        assert body["items"][SLOT - 1]["sources"] == (
            [EXPLORED] if was_explored else body["items"][SLOT - 1]["sources"]
        )
        if not was_explored:  # users click the ranked item at the slot, never a new one
            assert shown[SLOT - 1] == det[SLOT - 1]
            clicks.append(
                {
                    "event_id": f"click-{user}",
                    "user_id": user,
                    "item_id": shown[SLOT - 1],
                    "event_type": "click",
                    "recommendation_id": body["recommendation_id"],
                    "position": SLOT,
                }
            )
    assert 35 < explored < 85  # the coin is ε = 0.5 over 120 lists
    bought = next(b for b in bodies if b["items"][SLOT - 1]["item_id"] in NEW)
    purchase = {
        "event_id": "bought-new",
        "user_id": "u9999",
        "item_id": bought["items"][SLOT - 1]["item_id"],
        "event_type": "purchase",
        "recommendation_id": bought["recommendation_id"],
    }
    clicks_and_purchase = [*clicks, purchase]
    for start in range(0, len(clicks_and_purchase), 40):  # serving.max_batch is 50
        batch = clicks_and_purchase[start : start + 40]
        answered = client.post("/v1/events", json=batch, headers=auth).json()
        assert [a["rule"] for a in answered["attributed"]] == ["explicit"] * len(batch)
    client.app.state.runtime.decisions.flush()  # type: ignore[attr-defined]

    log = store.scan_decisions()
    by_slot = log[log["position"] == SLOT]
    new = by_slot["item_id"].isin(NEW)
    # the hand-computed mixture: 1 - ε for the ranked item, ε / 3 for each new arrival
    assert np.allclose(by_slot.loc[~new, "propensity"], 1 - EPSILON)
    assert np.allclose(by_slot.loc[new, "propensity"], EPSILON / len(NEW))
    assert np.all(log.loc[log["position"] != SLOT, "propensity"] == 1.0)
    assert len(log) == len(users) * K

    # the shared counts: the new arrivals shown are arms, with their trials and the purchase;
    # the server's own sync loop (every second) brings them back within seconds
    board = client.app.state.runtime.bandits  # type: ignore[attr-defined]
    shown_new = dict(by_slot.loc[new, "item_id"].value_counts())
    deadline = time.monotonic() + 5.0
    while board.counts.purchases.sum() == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    counts = board.counts
    assert dict(zip(counts.arms.tolist(), counts.shown.tolist(), strict=True)) == shown_new
    assert dict(zip(counts.arms.tolist(), counts.purchases.tolist(), strict=True)) == {
        arm: int(arm == purchase["item_id"]) for arm in shown_new
    }
    assert counts.clicks.sum() == 0  # the clicks went to ranked items, which are no arms

    # off-policy: estimate the deterministic policy (never served) from the exploring log
    runner = CliRunner()
    ope_log = tmp_path / "log.csv"
    export = f"decisions export --since 1h --format csv --for-ope click --out {ope_log}"
    done = runner.invoke(
        cli,
        shlex.split(export),
        env={"RECSMITH_STORE__URL": url},
    )
    assert done.exit_code == 0, done.stderr
    logged = pd.read_csv(ope_log, dtype={"round": str, "position": str, "action": str})
    assert logged["reward"].sum() == len(clicks)  # the purchase is no click
    rid = {body["recommendation_id"]: n for n, body in enumerate(bodies)}
    target = pd.DataFrame(
        [
            {"round": r, "position": str(p + 1), "action": str(det[p]), "probability": 1.0}
            for r, n in rid.items()
            for p, det in [(p, plain.lists.item_ids[n]) for p in range(K)]
        ]
    )
    target_file = tmp_path / "target.csv"
    target.to_csv(target_file, index=False)
    done = runner.invoke(
        cli,
        [
            "ope",
            "estimate",
            "--log",
            str(ope_log),
            "--target",
            str(target_file),
            "--estimators",
            "ips",
            "--json",
            "--bootstrap",
            "400",
        ],
    )
    assert done.exit_code == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    lo, hi = result["ips"]["ci"]
    # the draws follow the random recommendation ids, so a 95 % interval misses the truth in one
    # run of twenty: judge by the interval's own standard error, at 4 of them (1 run in 15,000)
    value, se = result["ips"]["value"], (hi - lo) / (2 * 1.96)
    truth = 1 / K  # the deterministic list is always clicked at the slot, never elsewhere
    assert abs(value - truth) <= 4 * se
    naive = len(clicks) / (len(users) * K)  # what propensities of 1 would estimate
    assert abs(naive - truth) > 3 * se  # ... which the estimate tells apart from the truth
    # the response cache (on by default) must not freeze one draw: the same ask, other lists
    ask = f"/v1/users/u0001/recommendations?k={K}"
    again = [client.get(ask, headers=auth).json()["items"] for _ in range(12)]
    again_and_again = {tuple(i["item_id"] for i in items) for items in again}
    assert len(again_and_again) > 1


@pytest.fixture(scope="module")
def discovering(simulated: tuple[pd.DataFrame, list[Item]]) -> Pipeline:
    """A pipeline trained before any new item existed; slot 1 always explores new arrivals."""
    events, items = simulated
    config = PipelineConfig.model_validate(
        {
            "retrieval": {"sources": [{"name": "knn", "model": "itemknn", "quota": 30}]},
            "ranking": {"enabled": False},
            "explore": {"policy": "epsilon", "epsilon": 1.0, "slots": [1]},
        }
    )
    return train_pipeline(config, events, dict(EventSettings().weights), items=items)


def test_items_created_after_training_are_explored_with_their_propensity(
    backend: tuple[EventStore, str], discovering: Pipeline
) -> None:
    """Two items PUT while the server runs reach the new-arrival pool through the catalogue
    sync (no retrain) and take the exploring slot, each with probability 1 / 2."""
    store, url = backend
    _, secret = create_api_key(store, "t", ["read", "ingest", "admin"])
    auth = {"Authorization": f"Bearer {secret}"}
    settings = Settings(store={"url": url}, serving={"catalog_sync_interval_s": 0.1})
    with TestClient(create_app(settings, bundle=discovering, store=store)) as client:  # type: ignore[arg-type]
        before = client.get("/v1/users/u0001/recommendations?k=3", headers=auth).json()
        assert all(i["sources"] != [EXPLORED] for i in before["items"])  # an empty pool
        for item_id in ("just-in-1", "just-in-2"):
            now = datetime.now(UTC).isoformat()
            body = {"categories": ["books"], "created_at": now}
            assert client.put(f"/v1/items/{item_id}", json=body, headers=auth).status_code == 200
        deadline, first = time.monotonic() + 10.0, None
        while time.monotonic() < deadline:
            bodies = [
                client.get(f"/v1/users/u{n:04d}/recommendations?k=3", headers=auth).json()
                for n in range(1, 21)
            ]
            first = {b["items"][0]["item_id"] for b in bodies}
            if first == {"just-in-1", "just-in-2"}:
                break
            time.sleep(0.1)
        assert first == {"just-in-1", "just-in-2"}
        client.app.state.runtime.decisions.flush()  # type: ignore[attr-defined]
    log = store.scan_decisions()
    latest = log[log["recommendation_id"].isin([b["recommendation_id"] for b in bodies])]
    assert np.allclose(latest.loc[latest["position"] == 1, "propensity"], 0.5)
    assert np.all(latest.loc[latest["position"] > 1, "propensity"] == 1.0)
