"""Shared fixtures for the HTTP API tests: a real small trained model, a real store, keys.

The model is trained once per session (a few hundred synthetic events, ItemKNN) and saved to disk,
so tests exercise the same load path as the server. Each test gets its own store: a SQLite file,
or, in a module that sets ``STORES = ("sqlite", "postgres")``, also a PostgreSQL schema of its
own (created by the store, dropped after the test) on the server named by
``RECSMITH_TEST_POSTGRES_URL``. As in ``tests/store``, a missing server skips those runs unless
``RECSMITH_REQUIRE_POSTGRES=1`` (CI).
"""

from __future__ import annotations

import inspect
import time
import uuid
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
from recsmith.models.registry import create
from recsmith.pipeline.artifact import train_pipeline
from recsmith.pipeline.config import PipelineConfig
from recsmith.pipeline.runtime import Pipeline
from recsmith.serving import create_api_key, create_app
from recsmith.store.base import EventStore
from recsmith.store.open import open_store
from recsmith.testing.backends import postgres_url_or_skip

N_USERS, N_ITEMS = 40, 50
EventFactory = Callable[..., dict[str, Any]]


def training_events(seed: int = 7) -> list[dict[str, Any]]:
    """About 400 events: each user views ~10 items drawn with a popularity skew, buys a few."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, N_ITEMS + 1)
    weights /= weights.sum()
    start = time.time() - 30 * 86_400
    events: list[dict[str, Any]] = []
    for u in range(N_USERS):
        for i in rng.choice(N_ITEMS, size=10, replace=False, p=weights):
            n = len(events)
            events.append(
                {
                    "event_id": f"train-{n}",
                    "user_id": f"u{u}",
                    "item_id": f"i{i}",
                    "event_type": "purchase" if rng.random() < 0.2 else "view",
                    "timestamp": start + n * 60,
                }
            )
    return events


@pytest.fixture(scope="session")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    frame, rejected = validate_events(training_events(), EventSettings())
    assert not rejected
    data = Interactions.from_events(frame, EventSettings().weights)
    path = tmp_path_factory.mktemp("model") / "bundle"
    ModelBundle.train(data, create("itemknn")).save(path)
    return path


@pytest.fixture(scope="session")
def bundle(bundle_dir: Path) -> ModelBundle:
    return ModelBundle.load(bundle_dir)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "recsmith.sqlite"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run each test that uses the store on every backend its module lists in ``STORES``, except
    one that takes ``db_path`` itself: it opens the SQLite file directly."""
    kinds = getattr(metafunc.module, "STORES", None)
    if not kinds or "store_kind" not in metafunc.fixturenames:
        return
    if "db_path" in inspect.signature(metafunc.function).parameters:
        kinds = ("sqlite",)
    metafunc.parametrize("store_kind", kinds)


@pytest.fixture
def store_kind() -> str:
    """The backend of this test's store (parametrised by ``pytest_generate_tests``)."""
    return "sqlite"


@pytest.fixture
def store_url(store_kind: str, db_path: Path) -> Iterator[str]:
    """This test's own store: a fresh SQLite file, or a fresh PostgreSQL schema."""
    if store_kind == "sqlite":
        yield f"sqlite:///{db_path}"
        return
    server = postgres_url_or_skip()
    import psycopg
    from psycopg import sql

    schema = f"t_{uuid.uuid4().hex}"
    yield f"{server}{'&' if '?' in server else '?'}schema={schema}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture
def store(store_url: str) -> Iterator[EventStore]:
    opened = open_store(store_url)
    yield opened
    opened.close()


@pytest.fixture
def settings(store_url: str, bundle_dir: Path) -> Settings:
    return Settings(store={"url": store_url}, serving={"model_dir": bundle_dir, "max_batch": 50})


@pytest.fixture
def client(settings: Settings, bundle: ModelBundle, store: EventStore) -> Iterator[TestClient]:
    with TestClient(create_app(settings, bundle=bundle, store=store)) as test_client:
        yield test_client


@pytest.fixture
def keys(store: EventStore) -> dict[str, dict[str, str]]:
    """Authorization headers by scope: ``keys["read"]`` is a header dict for a read-only key."""
    out = {}
    for scope in ("ingest", "read", "admin"):
        _, secret = create_api_key(store, f"test-{scope}", [scope])
        out[scope] = {"Authorization": f"Bearer {secret}"}
    return out


@pytest.fixture
def make_event() -> EventFactory:
    """A valid event dict; keyword arguments override fields (``None`` removes one)."""
    counter = iter(range(1_000_000))

    def factory(**fields: Any) -> dict[str, Any]:
        event: dict[str, Any] = {
            "event_id": f"http-{next(counter)}",
            "user_id": "u1",
            "item_id": "i1",
            "event_type": "view",
            "timestamp": time.time() - 60,
        }
        event.update(fields)
        return {k: v for k, v in event.items() if v is not None}

    return factory


@pytest.fixture(scope="session")
def training_records() -> list[dict[str, Any]]:
    """The events the session's model was trained on (for tests that train their own)."""
    return training_events()


def _small_pipeline(records: list[dict[str, Any]], sources: list[dict[str, Any]]) -> Pipeline:
    """A pipeline without a ranker over ``sources``, trained on ``records`` (fast: seconds)."""
    frame, _ = validate_events(records, EventSettings())
    config = PipelineConfig.model_validate(
        {"retrieval": {"sources": sources}, "ranking": {"enabled": False}}
    )
    return train_pipeline(config, frame, dict(EventSettings().weights))


@pytest.fixture(scope="module")
def pipeline(training_records: list[dict[str, Any]]) -> Pipeline:
    """A small pipeline with every kind of source the item routes use."""
    return _small_pipeline(
        training_records,
        [
            {"name": "knn", "model": "itemknn", "quota": 30},
            {"name": "recent", "model": "itemknn", "use": "recent", "quota": 10},
            {
                "name": "together",
                "model": "cooccurrence",
                "quota": 10,
                "params": {"min_support": 1},
            },
            {"name": "trending", "model": "trending", "quota": 5},
        ],
    )


@pytest.fixture(scope="session")
def small_pipeline(
    training_records: list[dict[str, Any]],
) -> Callable[[list[dict[str, Any]]], Pipeline]:
    """Train a ranker-less pipeline over the given sources on the session's events."""
    return lambda sources: _small_pipeline(training_records, sources)
