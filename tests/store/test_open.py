"""open_store: the URL's scheme picks the backend; anything else is refused naming ``store.url``."""

from __future__ import annotations

from pathlib import Path

import pytest

from recsmith.errors import ValidationError
from recsmith.store.base import EventStore
from recsmith.store.open import open_store
from recsmith.store.sqlite import SQLiteStore


def test_sqlite_url_opens_that_file(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "events.sqlite"
    store = open_store(f"sqlite:///{path}")
    try:
        assert isinstance(store, SQLiteStore)
        assert isinstance(store, EventStore)
        assert store.path == path
        assert path.is_file()
    finally:
        store.close()


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_postgres_urls_open_a_postgres_store_without_connecting(scheme: str) -> None:
    pytest.importorskip("psycopg")
    from recsmith.store.postgres import PostgresStore

    url = f"{scheme}://nobody@127.0.0.1:1/db"  # nothing listens there: opening must not connect
    store = open_store(url)
    assert isinstance(store, PostgresStore)
    assert isinstance(store, EventStore)
    assert store.url == url


@pytest.mark.parametrize(
    "url",
    [
        "mysql://localhost/db",
        "sqlite://relative.db",
        "events.sqlite",
        "",
        "SQLITE:///x.db",
        "http://example.com/store",
    ],
)
def test_unsupported_scheme_is_a_validation_error_naming_the_setting(url: str) -> None:
    with pytest.raises(ValidationError) as info:
        open_store(url)
    assert info.value.field == "store.url"
    assert repr(url) in str(info.value)
    assert str(info.value).startswith("store.url: unsupported scheme")


def test_store_settings_set_the_dead_letter_policy(tmp_path: Path) -> None:
    from recsmith.config import StoreSettings
    from recsmith.store.dead_letters import DeadLetterPolicy

    settings = StoreSettings(dead_letter_max_bytes=100, dead_letter_retention_days=2)
    store = open_store(f"sqlite:///{tmp_path / 'dl.sqlite'}", settings)
    try:
        assert isinstance(store, SQLiteStore)
        assert store.dead_letter_policy == DeadLetterPolicy(100, 2 * 86_400.0, 60.0)
    finally:
        store.close()
    defaults = open_store(f"sqlite:///{tmp_path / 'default.sqlite'}")
    try:
        assert isinstance(defaults, SQLiteStore)
        assert defaults.dead_letter_policy == DeadLetterPolicy(4096, 30 * 86_400.0, 60.0)
    finally:
        defaults.close()
