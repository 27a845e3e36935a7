"""The shared real datasets (read-only, never copied into the repository), for every test package.

Without ``RECSMITH_REQUIRE_DATASETS=1`` a missing dataset skips its test, so a fresh clone without
``../shared/datasets`` still runs the rest; CI sets it, because a skipped check cannot fail.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REQUIRED = os.environ.get("RECSMITH_REQUIRE_DATASETS") == "1"


def datasets_root() -> Path:
    """``$RECSMITH_DATASETS``, else ``../shared/datasets`` beside the repository root."""
    env = os.environ.get("RECSMITH_DATASETS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


def locate_dataset(name: str) -> Path:
    """That dataset's directory; when it is absent, a skip, or a failure under
    ``RECSMITH_REQUIRE_DATASETS=1``."""
    path = datasets_root() / name
    if not path.is_dir():
        message = f"dataset {name} not found under {datasets_root()} (set RECSMITH_DATASETS)"
        if REQUIRED:
            pytest.fail(f"{message} (RECSMITH_REQUIRE_DATASETS=1)")
        pytest.skip(message)
    return path


@pytest.fixture
def dataset() -> Callable[[str], Path]:
    """``dataset("movielens-100k")``: that directory (see ``locate_dataset``)."""
    return locate_dataset


@pytest.fixture
def matrices_built(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of the event frames ``Interactions.from_events`` is called on from now on
    (the real one runs, wrapped): how many times a path sorts events into a matrix."""
    from recsmith.features.interactions import Interactions

    built: list[int] = []
    real = Interactions.from_events.__func__  # type: ignore[attr-defined]

    def counted(cls: type[Interactions], events: Any, *args: Any, **kwargs: Any) -> Interactions:
        built.append(len(events))
        return real(cls, events, *args, **kwargs)  # type: ignore[no-any-return]

    monkeypatch.setattr(Interactions, "from_events", classmethod(counted))
    return built
