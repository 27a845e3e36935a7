"""EASE's ``recency`` weighs a visitor's items by how recent they are when the app answers them:
through the HTTP app, a visitor whose two older items are in one cluster and whose newest item is
in another is offered the newest item's cluster first with the weights, the older items' without.

Two clusters of four items, each co-viewed whole by eight users and never with the other: EASE's
weights are one value c between any two items of a cluster and 0 across (block-diagonal, the same
for both clusters by symmetry). From a1, a2 (older) and b1 (newest), an unseen item of cluster a
scores (w(a1) + w(a2)) · c and one of cluster b w(b1) · c: without the weights 2c against c;
with β 10 and a half of 0.5 places, w = 1 + 10 · 0.25 ** (place − 1): b1 (place 1) 11, a2 6/2.5 =
3.5, a1 1.625, so 5.125c against 11c. The scores served are checked against c from a plain fit."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from recsmith.bundle import ModelBundle
from recsmith.config import EventSettings, Settings
from recsmith.events.validate import validate_events
from recsmith.features.interactions import Interactions
from recsmith.models.ease import EASE
from recsmith.pipeline.artifact import train_pipeline
from recsmith.pipeline.config import PipelineConfig
from recsmith.serving import create_app
from recsmith.store.base import EventStore
from recsmith.testing.contracts import event, ingest

#: the backends each store-using test runs on (read by conftest's ``pytest_generate_tests``)
STORES = ("sqlite", "postgres")
CLUSTERS = {"a": ["a1", "a2", "a3", "a4"], "b": ["b1", "b2", "b3", "b4"]}
PARAMS = {"regularization": 1.0, "recency_half_places": 0.5}
BETA = 10.0
#: (w(a1) + w(a2), w(b1)): the weight a cluster's unseen item is scored by, in units of c
WEIGHED = {0.0: {"a": 2.0, "b": 1.0}, BETA: {"a": 1.625 + 3.5, "b": 11.0}}


def records() -> list[dict[str, Any]]:
    start = time.time() - 10 * 86_400
    return [
        {
            "event_id": f"train-{name}{u}-{item}",
            "user_id": f"{name}{u}",
            "item_id": item,
            "event_type": "view",
            "timestamp": start + 60 * (10 * u + n),
        }
        for name, items in CLUSTERS.items()
        for u in range(8)
        for n, item in enumerate(items)
    ]


def training() -> tuple[Any, Interactions]:
    frame, rejected = validate_events(records(), EventSettings())
    assert not rejected
    return frame, Interactions.from_events(frame, EventSettings().weights)


def c_weight() -> float:
    """EASE's weight between two items of one cluster, from a plain fit (the oracle's c)."""
    _, data = training()
    plain = EASE(regularization=PARAMS["regularization"]).fit(data)
    a1, a2, a3, b1, b2 = data.items.to_index(["a1", "a2", "a3", "b1", "b2"])
    c = float(plain.weights_[a1, a3])
    assert c > 0 and plain.weights_[b1, b2] == pytest.approx(c)  # the symmetry relied on
    assert plain.weights_[a2, a3] == pytest.approx(c) and plain.weights_[a1, b2] == 0.0
    return c


def check_cluster_order(body: dict[str, Any], beta: float, *, model_scores: bool) -> None:
    """The list holds the unseen items of both clusters, those of the cluster the hand-weighted
    scores put first ahead of the other's; with ``model_scores`` (a single-model release: a
    pipeline serves its fused scores) each scores its cluster's weight × c."""
    assert body["tier"] == "session", body
    lead = max(WEIGHED[beta], key=WEIGHED[beta].__getitem__)
    listed = [item["item_id"] for item in body["items"]]
    assert sorted(listed) == ["a3", "a4", "b2", "b3", "b4"], listed
    clusters = [item[0] for item in listed]
    assert clusters == sorted(clusters, key=lambda cluster: cluster != lead), listed
    if model_scores:
        c = c_weight()
        for item in body["items"]:
            want = WEIGHED[beta][item["item_id"][0]] * c
            assert item["score"] == pytest.approx(want, rel=1e-4), item


@pytest.fixture
def release_client(
    tmp_path: Path, store: EventStore, store_url: str
) -> Callable[[float], TestClient]:
    """The app over a single-model EASE release at a given β, saved and loaded as served."""

    def client(beta: float) -> TestClient:
        _, data = training()
        ModelBundle.train(data, EASE(**PARAMS, recency=beta)).save(tmp_path / "release")
        settings = Settings(store={"url": store_url}, serving={"model_dir": tmp_path / "release"})
        bundle = ModelBundle.load(tmp_path / "release")
        return TestClient(create_app(settings, bundle=bundle, store=store))

    return client


@pytest.mark.parametrize(
    ("stored", "recent"),
    [(["a1", "a2", "b1"], ""), ([], "b1,a2,a1"), (["a1", "a2"], "b1")],
)
@pytest.mark.parametrize("beta", [0.0, BETA])
def test_a_release_weighs_a_visitors_stored_items_then_the_requests_recent_ones(
    beta: float,
    stored: list[str],
    recent: str,
    release_client: Callable[[float], TestClient],
    store: EventStore,
    keys: dict[str, dict[str, str]],
) -> None:
    """A single-model release's own items for a visitor: the stored ones (oldest first), then
    ``recent`` (newest first) reversed — a1, a2, b1 (b1 newest) whether all are stored, all come
    in ``recent``, or a1, a2 are stored and b1 is ``recent``."""
    ingest(store, [event(item, user="visitor", h=h) for h, item in enumerate(stored)])
    url = "/v1/users/visitor/recommendations?k=6" + (f"&recent={recent}" if recent else "")
    with release_client(beta) as client:
        body = client.get(url, headers=keys["read"]).json()
    check_cluster_order(body, beta, model_scores=True)


def known_user_data() -> tuple[Any, Interactions]:
    """The clusters, and a known user z trained on an item seen with nothing else (``lone``):
    z's training items lead EASE nowhere, so its items since training are scored instead."""
    first = records()[0]["timestamp"]
    lone = {"event_id": "z-lone", "user_id": "z", "item_id": "lone", "event_type": "view"}
    frame, rejected = validate_events([*records(), {**lone, "timestamp": first}], EventSettings())
    assert not rejected
    return frame, Interactions.from_events(frame, EventSettings().weights)


def check_unweighed(listed: list[str]) -> None:
    """A known user's items since training (b1 newest, a2, a1) take no place (README): cluster
    a's unseen items score 2c, cluster b's c, as without the weights, so a leads."""
    assert sorted(listed) == ["a3", "a4", "b2", "b3", "b4"], listed
    assert [item[0] for item in listed] == ["a", "a", "b", "b", "b"], listed


def test_a_release_leaves_a_known_users_items_since_training_unweighed() -> None:
    _, data = known_user_data()
    bundle = ModelBundle.train(data, EASE(**PARAMS, recency=BETA))
    answer = bundle.answer(["z"], 5, recent=[["b1", "a2", "a1"]])
    assert answer.tiers == ["session"]
    check_unweighed(list(answer.lists.item_ids[0]))


@pytest.mark.parametrize("use", ["auto", "recent"])
@pytest.mark.parametrize("transitions", [False, True])
def test_a_pipeline_leaves_a_known_users_recent_items_unweighed(
    use: str, transitions: bool
) -> None:
    """``auto``: z's training items lead nowhere, its recent items are scored; ``recent``: every
    user is scored from its recent items. With a source that reads order (``transitions``) the
    known user's ``Queries.latest`` is built, and still not weighed: the EASE source's own
    proposals are read (the fused list mixes in the transitions')."""
    frame, _ = known_user_data()
    sources = [{"name": "ease", "model": "ease", "quota": 10, "use": use}]
    sources[0]["params"] = {**PARAMS, "recency": BETA}
    if transitions:
        sources.append({"name": "transitions", "model": "transitions", "quota": 1})
    config = PipelineConfig.model_validate(
        {"retrieval": {"sources": sources}, "ranking": {"enabled": False}}
    )
    pipeline = train_pipeline(config, frame, dict(EventSettings().weights))
    assert pipeline.reads_order == transitions
    queries = pipeline.queries(np.array(["z"], dtype=object), None, [["b1", "a2", "a1"]], None)
    assert (queries.latest is not None) == transitions
    proposed = pipeline.sources[0].retrieve(queries, 5)
    check_unweighed(list(pipeline.bundle.items.to_external(proposed.items)))
    # z beside a visitor in one call (the coalescer answers concurrent requests so): the
    # visitor's rows weighed (cluster b leads at β 10), z's still not (review rv32o2 G1)
    both = pipeline.queries(
        np.array(["z", "visitor"], dtype=object), None, [["b1", "a2", "a1"]] * 2, None
    )
    together = pipeline.sources[0].retrieve(both, 5)
    items = pipeline.bundle.items.to_external(together.items)
    check_unweighed(list(items[together.query == 0]))
    visitor = list(items[together.query == 1])
    assert [item[0] for item in visitor] == ["b", "b", "b", "a", "a"], visitor
    if not transitions:
        answer = pipeline.answer(np.array(["z"], dtype=object), 5, recent=[["b1", "a2", "a1"]])
        check_unweighed(list(answer.lists.item_ids[0]))


@pytest.mark.parametrize("beta", [0.0, BETA])
def test_a_pipeline_reads_sessions_oldest_first(beta: float) -> None:
    """``recommend --sessions``' lists (``Pipeline.recommend_for_items``) come oldest first:
    a1, a2, b1 puts b1 newest, as the single-model release reads them."""
    frame, _ = training()
    source = {"name": "ease", "model": "ease", "quota": 10}
    source["params"] = {**PARAMS, "recency": beta}
    config = PipelineConfig.model_validate(
        {"retrieval": {"sources": [source]}, "ranking": {"enabled": False}}
    )
    pipeline = train_pipeline(config, frame, dict(EventSettings().weights))
    listed = list(pipeline.recommend_for_items([["a1", "a2", "b1"]], 5).item_ids[0])
    lead = max(WEIGHED[beta], key=WEIGHED[beta].__getitem__)
    assert sorted(listed) == ["a3", "a4", "b2", "b3", "b4"], listed
    clusters = [item[0] for item in listed]
    assert clusters == sorted(clusters, key=lambda cluster: cluster != lead), listed


@pytest.fixture(params=[0.0, BETA])
def pipeline_client(
    request: pytest.FixtureRequest, settings: Settings, store: EventStore
) -> Iterator[tuple[TestClient, float]]:
    frame, _ = training()
    source = {"name": "ease", "model": "ease", "quota": 10}
    source["params"] = {**PARAMS, "recency": request.param}
    config = PipelineConfig.model_validate(
        {"retrieval": {"sources": [source]}, "ranking": {"enabled": False}}
    )
    pipeline = train_pipeline(config, frame, dict(EventSettings().weights))
    with TestClient(create_app(settings, bundle=pipeline, store=store)) as client:  # type: ignore[arg-type]
        yield client, request.param


def test_a_pipeline_offers_a_visitor_its_newest_items_cluster_first(
    pipeline_client: tuple[TestClient, float], keys: dict[str, dict[str, str]]
) -> None:
    """The request's ``recent`` items, newest first."""
    client, beta = pipeline_client
    url = "/v1/users/visitor/recommendations?k=6&recent=b1,a2,a1"
    check_cluster_order(client.get(url, headers=keys["read"]).json(), beta, model_scores=False)


def test_a_pipeline_weighs_the_online_states_items_by_when_they_came(
    pipeline_client: tuple[TestClient, float], keys: dict[str, dict[str, str]]
) -> None:
    """The visitor's events POSTed in time order: the online state's recent items, newest
    first (b1, a2, a1)."""
    client, beta = pipeline_client
    now = time.time()
    posted = client.post(
        "/v1/events",
        json=[
            {
                "event_id": f"now-{n}",
                "user_id": "visitor",
                "item_id": item,
                "event_type": "view",
                "timestamp": now - 30 + n,
            }
            for n, item in enumerate(["a1", "a2", "b1"])
        ],
        headers=keys["ingest"],
    )
    assert posted.status_code < 300, posted.text
    body = client.get("/v1/users/visitor/recommendations?k=6", headers=keys["read"]).json()
    check_cluster_order(body, beta, model_scores=False)
