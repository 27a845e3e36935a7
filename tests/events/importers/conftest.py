"""Fixtures for the importer tests: a fresh SQLite store, settings, and the shared real datasets."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from recsmith.config import EventSettings
from recsmith.store.sqlite import SQLiteStore


def datasets_root() -> Path:
    """``$RECSMITH_DATASETS``, else ``../shared/datasets`` beside the repository root."""
    env = os.environ.get("RECSMITH_DATASETS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3].parent / "shared" / "datasets"


@pytest.fixture
def dataset() -> Callable[[str], Path]:
    """``dataset("movielens-100k")``: that directory, or the test is skipped when it is absent."""

    def locate(name: str) -> Path:
        path = datasets_root() / name
        if not path.is_dir():
            pytest.skip(f"dataset {name} not found under {datasets_root()} (set RECSMITH_DATASETS)")
        return path

    return locate


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "s.sqlite")
    yield s
    s.close()


@pytest.fixture
def settings() -> EventSettings:
    return EventSettings()
