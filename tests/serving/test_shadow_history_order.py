"""A shadow release that reads a history's order (two-tower) behind a served one that reads a
user's stored items as a set (popularity): the shadow pools the items in their time order, read
again in the shadow's thread (``ShadowRunner._in_its_order``), not in the set read's order
(by item id), which would judge it on a list it never serves (ttfix27's note, BENCHMARKS
§165). Checked through the overlap it reports against the tower's own answers."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from test_two_tower_profiles import tower_dir  # noqa: F401  (the module's release fixture)
from typer.testing import CliRunner

from recsmith.bundle import ModelBundle
from recsmith.cli.app import app
from recsmith.config import EventSettings, LifecycleSettings, Settings
from recsmith.events.validate import validate_events
from recsmith.features.interactions import Interactions
from recsmith.governance.releases import ModelRegistry
from recsmith.lifecycle.overlap import rbo
from recsmith.lifecycle.shadow import ShadowJob, ShadowMetrics, ShadowRunner
from recsmith.lifecycle.shadow_stats import read_tallies
from recsmith.models.registry import create
from recsmith.serving import create_app
from recsmith.serving.coalesce import Options, UserQuery
from recsmith.store.base import EventStore
from recsmith.store.ingest import ingest_events
from recsmith.store.open import open_store
from recsmith.testing.backends import POSTGRES_URL, open_backend

#: new-c's stored events, oldest first: the set read gives them by id (c1i1, c2i0, c2i1, c2i2),
#: so the tower's 3 latest would be c2i0, c2i1, c2i2 instead of c2i1, c2i0, c1i1
MET = ["c2i2", "c2i1", "c2i0", "c1i1"]
K = 20  # every item the user has not met: the pooled items order the whole list


def _popular(tmp_path: Path) -> Path:
    """A popularity release over the tower's 24 items (c0i0 … c2i7), item s·8+i viewed by
    fewer users the higher it is."""
    events = [
        {
            "user_id": f"p{u}",
            "item_id": f"c{n // 8}i{n % 8}",
            "event_type": "view",
            "timestamp": 1_700_000_000 + n,
        }
        for n in range(24)
        for u in range(24 - n)
    ]
    frame, rejected = validate_events(events, EventSettings())
    assert not rejected
    path = tmp_path / "popular"
    ModelBundle.train(
        Interactions.from_events(frame, EventSettings().weights), create("popular")
    ).save(path)
    return path


def _wait(condition: Callable[[], bool], what: str = "the request was not shadowed") -> None:
    deadline = time.monotonic() + 20
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


@pytest.mark.parametrize("cache_entries", [1000, 0], ids=["route-read", "flush-read"])
def test_a_tower_shadowing_a_set_reading_release_pools_the_stored_items_by_time(
    tower_dir: Path,  # noqa: F811
    tmp_path: Path,
    store: EventStore,
    store_url: str,
    keys: dict[str, dict[str, str]],
    cache_entries: int,
) -> None:
    """new-c (no profile, unknown at training) has four stored items: the served popularity
    release reads them as a set (by id), the tower shadowing it answers new-c from its 3 latest
    by time; the overlap reported is that of the served list with the tower's list pooled by
    time, which differs from the one pooled in the set read's order."""
    registry = ModelRegistry(tmp_path / "registry")
    served = registry.publish(_popular(tmp_path))
    candidate = registry.publish(tower_dir)
    registry.deploy(served)
    now = time.time()
    events = [
        {"user_id": "new-c", "item_id": item, "event_type": "view", "timestamp": now - 60 + step}
        for step, item in enumerate(MET)
    ]
    assert ingest_events(store, events, EventSettings(), source="test").accepted == len(MET)
    as_set = store.user_items("new-c")
    assert as_set != MET and store.user_items("new-c", by_time=True) == MET
    settings = Settings(
        store={"url": store_url},
        serving={"registry": registry.root, "cache_entries": cache_entries},
        lifecycle={"shadow_release": candidate, "shadow_sample": 1.0},
    )
    with TestClient(create_app(settings, store=store)) as client:
        body = client.get(
            "/v1/users/new-c/recommendations", params={"k": K}, headers=keys["read"]
        ).json()
        assert body["model_version"] == served
        get = lambda: client.get("/v1/admin/shadow", headers=keys["admin"]).json()  # noqa: E731
        _wait(lambda: get()["compared"] == 1)
        report = get()
    listed = [i["item_id"] for i in body["items"]]
    tower = ModelBundle.load(tower_dir)

    def shadowed(history: list[str]) -> list[str]:
        got = tower.answer(["new-c"], K, extra_seen=[as_set], history=[history])
        assert got.tiers == ["session"]
        return [str(i) for i in got.lists.item_ids[0]]

    by_time, by_id = shadowed(MET), shadowed(as_set)
    assert rbo(listed, by_time) != rbo(listed, by_id)  # the order read shows in the overlap
    assert report["failed"] == 0, report["error"]
    assert report["rbo"] == pytest.approx(rbo(listed, by_time))


def test_a_store_that_fails_the_re_read_is_not_the_shadow_release_failing(
    tower_dir: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The tower shadowing a set-reading release reads new-c's stored items again by time; a
    store that cannot (a PostgreSQL server refusing connections: nothing listens on port 1)
    leaves the request out as ``store_failed``, never as the release's ``failed``, and the
    report's ``error`` (the release's latest failure) stays empty."""
    registry = ModelRegistry(tmp_path / "registry")
    candidate = registry.publish(tower_dir)
    metrics = CollectorRegistry()
    down = open_store("postgresql://postgres@127.0.0.1:1/test?connect_timeout=2")
    runner = ShadowRunner(registry, LifecycleSettings(), ShadowMetrics(metrics), store=down)
    runner.set(candidate, 1.0)
    runner.write_stats()  # the registry's tally before the failure: every count 0
    query = UserQuery("new-c", sorted(MET), [], {}, "0" * 32, history=sorted(MET))
    runner._compare(ShadowJob(query, Options(K), ["c0i0"], 1.0, by_time=False))
    report = runner.report()
    assert (report["store_failed"], report["failed"], report["compared"]) == (1, 0, 0)
    assert report["error"] is None
    count = lambda outcome: metrics.get_sample_value(  # noqa: E731
        "recsmith_shadow_requests_total", {"outcome": outcome}
    )
    assert (count("store_failed"), count("failed")) == (1.0, None)
    assert runner.tally_record()["store_failed"] == 1  # what the registry's tally carries
    # only store_failed changed since the last write: the tally is written again, and
    # `recsmith monitor` reads it back (table and --json)
    runner.write_stats()
    assert [t["store_failed"] for t in read_tallies(registry.root, candidate)] == [1]
    registry.deploy(candidate)  # monitor judges a deployed release (the shadow's own here)
    local = f"sqlite:///{tmp_path / 'monitor.sqlite'}"
    args = ["monitor", "--registry", str(registry.root), "--store", local]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)["shadow"]
    assert (shown["store_failed"], shown["failed"], shown["compared"]) == (1, 0, 0)
    table = CliRunner().invoke(app, args).stdout
    assert "(0 dropped, 0 failed, 1 left out on a store failure)" in table


def _connections(url: str) -> int:
    """The store's open connections as the PostgreSQL server counts them (``pg_stat_activity``
    by the URL's ``application_name``), not as the store's own books do."""
    import psycopg  # an extra: present wherever open_backend gave a PostgreSQL store

    name = dict(parse_qsl(urlsplit(url).query))["application_name"]
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        found = "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
        row = conn.execute(found, (name,)).fetchone()
    assert row is not None
    return int(row[0])


def test_the_shadow_thread_lets_go_of_its_connection_once_no_shadow_reads_again(
    tower_dir: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The tower's re-read by time opens a PostgreSQL connection in the shadow's thread: one
    more a server process while it shadows (rv28t's F2, counted by the server). Once the
    shadow stops, the thread closes it within a sync (it stayed open, idle, for the process's
    life); shadowing again opens it again."""
    registry = ModelRegistry(tmp_path / "registry")
    candidate = registry.publish(tower_dir)
    with open_backend("postgres", tmp_path) as (store, url):
        now = time.time()
        events = [
            {"user_id": "new-c", "item_id": item, "event_type": "view", "timestamp": now + s}
            for s, item in enumerate(MET)
        ]
        assert ingest_events(store, events, EventSettings(), source="test").accepted == len(MET)
        url = f"{url}&application_name=t{uuid.uuid4().hex[:16]}"  # schema= is a query already
        shadows = open_store(url)
        runner = ShadowRunner(
            registry, LifecycleSettings(), ShadowMetrics(CollectorRegistry()), store=shadows
        )
        runner.start()
        try:
            assert _connections(url) == 0
            for round_ in range(2):
                runner.set(candidate, 1.0)
                query = UserQuery("new-c", [], [], {}, f"{round_:032x}", history=sorted(MET))
                runner.offer(ShadowJob(query, Options(K), ["c0i0"], 1.0, by_time=False))
                _wait(lambda: runner.report()["compared"] == 1)
                assert _connections(url) == 1
                runner.set(None, 1.0)
                _wait(lambda: _connections(url) == 0, "the connection stayed open")
        finally:
            runner.close()
            shadows.close()
