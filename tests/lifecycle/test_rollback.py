"""Automatic rollback after a deploy, through the real app, reloader and registry.

Three releases: v0, then v1 (current when the servers start), then v2 deployed while they run.
The servers watch v2 only (a deploy: v1 went onto the history), judge it on the model routes,
and roll the registry back to v1 — once, however many servers reach the verdict, and never on to
v0 (a rollback's own swap is not watched).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from recsmith.bundle import ModelBundle
from recsmith.config import EventSettings, Settings
from recsmith.features.interactions import Interactions
from recsmith.governance.releases import ModelRegistry
from recsmith.models.registry import create
from recsmith.serving import create_api_key, create_app
from recsmith.store.sqlite import SQLiteStore
from recsmith.testing.recommender import checkerboard_events


def wait_until(condition: Callable[[], bool], within_s: float, what: str) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, f"{what} within {within_s} s"
        time.sleep(0.05)


@pytest.fixture
def registry(tmp_path: Path) -> tuple[ModelRegistry, list[str]]:
    data = Interactions.from_events(checkerboard_events(), EventSettings().weights)
    reg = ModelRegistry(tmp_path / "registry")
    versions = []
    for name in ("popular", "itemknn", "ease"):
        ModelBundle.train(data, create(name)).save(tmp_path / name)
        versions.append(reg.publish(tmp_path / name))
    reg.deploy(versions[0])
    reg.deploy(versions[1])
    return reg, versions


@contextmanager
def _servers(
    tmp_path: Path, reg: ModelRegistry, n: int, **lifecycle: float
) -> Iterator[tuple[list[TestClient], dict[str, str]]]:
    store = SQLiteStore(tmp_path / "s.sqlite")
    _, secret = create_api_key(store, "t", ["read"])
    store.close()
    settings = Settings(
        store={"url": f"sqlite:///{tmp_path / 's.sqlite'}"},
        serving={"registry": reg.root, "reload_interval_s": 0.1},
        lifecycle={"min_requests": 20, **lifecycle},
    )
    with ExitStack() as stack:
        clients = [stack.enter_context(TestClient(create_app(settings))) for _ in range(n)]
        yield clients, {"Authorization": f"Bearer {secret}"}


def _served(client: TestClient, headers: dict[str, str]) -> str:
    answer = client.get("/v1/users/u001/recommendations?k=3", headers=headers)
    assert answer.status_code == 200
    return str(answer.json()["model_version"])


def test_a_slow_release_is_rolled_back_once_by_every_server(
    tmp_path: Path, registry: tuple[ModelRegistry, list[str]]
) -> None:
    reg, (v0, v1, v2) = registry
    # any request is "too slow" at 1 µs: every server reaches the verdict on v2
    with _servers(tmp_path, reg, 2, max_p99_ms=0.001) as (clients, headers):
        assert {_served(c, headers) for c in clients} == {v1}  # not watched: the first load
        time.sleep(1.2)  # the watchers had their chance to (wrongly) judge v1
        assert reg.current() == v1
        reg.deploy(v2)
        for client in clients:
            wait_until(lambda c=client: _served(c, headers) == v2, 10, "v2 served")
        for client in clients:
            for _ in range(25):
                client.get("/v1/users/u002/recommendations?k=3", headers=headers)
        wait_until(lambda: reg.current() != v2, 10, "a rollback")
        assert reg.current() == v1 and reg.history() == [v0]
        store = SQLiteStore(tmp_path / "s.sqlite")
        rollbacks = lambda: [r for r in store.scan_audit() if r.action == "rollback"]  # noqa: E731
        wait_until(lambda: bool(rollbacks()), 10, "the audit record, just after the pointer")
        (record,) = rollbacks()
        store.close()
        assert (record.target, record.outcome) == (v1, "ok")
        assert record.detail["automatic"] is True and record.detail["from"] == v2
        assert "p99" in record.detail["reason"]
        for client in clients:
            wait_until(lambda c=client: _served(c, headers) == v1, 10, "v1 served again")
        # v1 came back by a rollback: not watched, so breaching requests leave it be
        for client in clients:
            for _ in range(25):
                client.get("/v1/users/u002/recommendations?k=3", headers=headers)
        time.sleep(1.5)
        assert reg.current() == v1


def test_a_healthy_release_stays(tmp_path: Path, registry: tuple[ModelRegistry, list[str]]) -> None:
    reg, (_, v1, v2) = registry
    with _servers(tmp_path, reg, 1) as ((client,), headers):  # default: 2 %, 1 s
        reg.deploy(v2)
        wait_until(lambda: _served(client, headers) == v2, 10, "v2 served")
        for _ in range(40):
            client.get("/v1/users/u002/recommendations?k=3", headers=headers)
        time.sleep(1.5)
        assert reg.current() == v2 and reg.history()[0] == v1


def test_too_few_requests_are_not_judged(
    tmp_path: Path, registry: tuple[ModelRegistry, list[str]]
) -> None:
    reg, (_, _, v2) = registry
    with _servers(tmp_path, reg, 1, max_p99_ms=0.001) as ((client,), headers):
        reg.deploy(v2)
        wait_until(lambda: _served(client, headers) == v2, 10, "v2 served")
        for _ in range(10):  # min_requests is 20
            client.get("/v1/users/u002/recommendations?k=3", headers=headers)
        time.sleep(1.5)
        assert reg.current() == v2
