"""Shadow mode over HTTP: a popularity release shadows the served ItemKNN one; its overlap is
checked against the two releases' own lists, computed here and compared by hand."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from recsmith.bundle import ModelBundle
from recsmith.cli.app import app
from recsmith.config import EventSettings, Settings
from recsmith.events.validate import validate_events
from recsmith.features.interactions import Interactions
from recsmith.governance.releases import ModelRegistry
from recsmith.lifecycle.shadow import ShadowJob, ShadowRunner
from recsmith.models.registry import create
from recsmith.serving import create_app
from recsmith.store.base import EventStore

USERS = ["u1", "u2", "u3", "u4", "u5", "u6"]


@pytest.fixture
def registry(
    tmp_path: Path, bundle_dir: Path, training_records: list[dict[str, Any]]
) -> tuple[ModelRegistry, str, str]:
    """A registry serving the session's ItemKNN release, with a popularity release beside it."""
    reg = ModelRegistry(tmp_path / "registry")
    served = reg.publish(bundle_dir)
    frame, _ = validate_events(training_records, EventSettings())
    data = Interactions.from_events(frame, EventSettings().weights)
    ModelBundle.train(data, create("popular")).save(tmp_path / "popular")
    candidate = reg.publish(tmp_path / "popular")
    reg.deploy(served)
    return reg, served, candidate


def _wait(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 20
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def _hand_rbo(a: list[str], b: list[str]) -> float:
    """RBO as its definition reads: the depth-d prefixes' agreement as sets, weighted 0.9^(d-1)."""
    depth = max(len(a), len(b))
    weights = [0.9**d for d in range(depth)]
    agree = [len(set(a[: d + 1]) & set(b[: d + 1])) / (d + 1) for d in range(depth)]
    return sum(w * x for w, x in zip(weights, agree, strict=True)) / sum(weights)


@pytest.mark.parametrize("cache_entries", [None, 0])
def test_a_shadow_release_is_compared_with_the_served_lists(
    registry: tuple[ModelRegistry, str, str],
    store_url: str,
    store: EventStore,
    keys: dict[str, dict[str, str]],
    make_event: Callable[..., dict[str, Any]],
    cache_entries: int | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The candidate answers each served request's query, the user's stored items in it; with
    the response cache off (``cache_entries`` 0) on SQLite the coalescer's flush reads them
    (``Coalescer.answer``'s ``stored``), and the job gets the query as answered."""
    reg, served, candidate = registry
    pop = ModelBundle.load(reg.path(candidate))
    # u1 views the popularity release's first pick now: both releases must leave it out
    bought = str(pop.recommend(["u1"], 1).item_ids[0][0])
    settings = Settings(
        store={"url": store_url},
        serving={"registry": reg.root}
        if cache_entries is None
        else {"registry": reg.root, "cache_entries": cache_entries},
        lifecycle={"shadow_release": candidate, "shadow_sample": 1.0},
    )
    offered: dict[str, list[str]] = {}  # each job's query: the user's excluded items
    offer = ShadowRunner.offer

    def noted(runner: ShadowRunner, job: ShadowJob) -> None:
        offered[job.query.user_id] = list(job.query.seen)
        offer(runner, job)

    monkeypatch.setattr(ShadowRunner, "offer", noted)
    with TestClient(create_app(settings, store=store)) as client:
        event = make_event(user_id="u1", item_id=bought)
        assert client.post("/v1/events", json=[event], headers=keys["ingest"]).json()["accepted"]
        lists = {}
        for user in USERS:
            body = client.get(f"/v1/users/{user}/recommendations?k=5", headers=keys["read"]).json()
            assert body["model_version"] == served
            lists[user] = [i["item_id"] for i in body["items"]]
        get = lambda: client.get("/v1/admin/shadow", headers=keys["admin"]).json()  # noqa: E731
        _wait(lambda: get()["compared"] == len(USERS), "every request shadowed")
        report = get()
        metrics = client.get("/metrics", headers=keys["admin"]).text
    seen = {u: [bought] if u == "u1" else [] for u in USERS}
    assert offered == seen  # the candidate leaves out what the served release left out
    shadowed = {
        u: [str(i) for i in pop.recommend([u], 5, extra_seen=[seen[u]]).item_ids[0]] for u in USERS
    }
    assert bought not in shadowed["u1"] + lists["u1"]
    jaccards = [
        len(set(lists[u]) & set(shadowed[u])) / len(set(lists[u]) | set(shadowed[u])) for u in USERS
    ]
    assert report["release"] == candidate and report["active"] and report["dropped"] == 0
    assert report["jaccard"] == pytest.approx(sum(jaccards) / len(USERS))
    rbos = [_hand_rbo(lists[u], shadowed[u]) for u in USERS]
    assert report["rbo"] == pytest.approx(sum(rbos) / len(USERS))
    assert 0 < report["jaccard"] < 1  # the two releases do differ, and do share items
    assert report["shadow_latency_ms"]["p50"] > 0 and report["served_latency_ms"]["p99"] > 0
    assert f'recsmith_shadow_requests_total{{outcome="compared"}} {len(USERS)}.0' in metrics
    assert f'recsmith_shadow_info{{release="{candidate}"}} 1.0' in metrics
    # the process wrote its tally to the registry: `recsmith monitor` shows the same figures
    result = CliRunner().invoke(
        app, ["monitor", "--registry", str(reg.root), "--store", store_url, "--json"]
    )
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)["shadow"]
    assert (shown["release"], shown["processes"], shown["compared"]) == (candidate, 1, len(USERS))
    for figure in ("jaccard", "rbo", "shadow_latency_ms", "served_latency_ms", "since"):
        assert shown[figure] == report[figure], figure
    table = CliRunner().invoke(app, ["monitor", "--registry", str(reg.root), "--store", store_url])
    assert f"shadow: {candidate} at 100 % of requests: {len(USERS)} lists compared" in table.stdout


def test_admin_routes_start_and_stop_the_shadow_and_are_audited(
    registry: tuple[ModelRegistry, str, str],
    store_url: str,
    store: EventStore,
    keys: dict[str, dict[str, str]],
) -> None:
    reg, served, _ = registry
    settings = Settings(store={"url": store_url}, serving={"registry": reg.root})
    admin = keys["admin"]
    with TestClient(create_app(settings, store=store)) as client:
        assert client.get("/v1/admin/shadow", headers=admin).json()["active"] is False
        unknown = client.put("/v1/admin/shadow", json={"release": "nope"}, headers=admin)
        assert unknown.status_code == 404 and "nope" in unknown.json()["detail"]
        bad = client.put("/v1/admin/shadow", json={"release": served, "sample": 2}, headers=admin)
        assert bad.status_code == 422 and "sample" in bad.text
        started = client.put(
            "/v1/admin/shadow", json={"release": served, "sample": 1.0}, headers=admin
        )
        assert started.status_code == 200 and started.json()["active"] is True
        assert (reg.root / "shadow.json").is_file()  # what the other processes follow
        for user in USERS[:3]:  # the served release shadowing itself: the very same lists
            client.get(f"/v1/users/{user}/recommendations?k=4", headers=keys["read"])
        get = lambda: client.get("/v1/admin/shadow", headers=admin).json()  # noqa: E731
        _wait(lambda: get()["compared"] == 3, "three requests shadowed")
        assert get()["jaccard"] == 1.0 and get()["rbo"] == 1.0
        stopped = client.delete("/v1/admin/shadow", headers=admin)
        assert stopped.status_code == 200 and stopped.json()["compared"] == 3
        assert get()["active"] is False
        trail = client.get("/v1/admin/audit?action=shadow", headers=admin).json()
    assert [(r["action"], r["target"], r["outcome"]) for r in trail] == [
        ("shadow.start", served, "ok"),
        ("shadow.stop", served, "ok"),
    ]


def test_shadow_routes_need_a_registry(
    settings: Settings, bundle: ModelBundle, store: EventStore, keys: dict[str, dict[str, str]]
) -> None:
    with TestClient(create_app(settings, bundle=bundle, store=store)) as client:
        answer = client.put("/v1/admin/shadow", json={"release": "x"}, headers=keys["admin"])
        assert answer.status_code == 409 and "registry" in answer.json()["detail"]
        assert client.put("/v1/admin/shadow", json={}, headers=keys["read"]).status_code == 403
