"""The shared real datasets (read-only, never copied into the repository), for every test package.

Without ``RECSMITH_REQUIRE_DATASETS=1`` a missing dataset skips its test, so a fresh clone without
``../shared/datasets`` still runs the rest; CI sets it, because a skipped check cannot fail.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from recsmith.events.schema import User
from recsmith.ranking import row_kernel

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


#: Two retrieval sources and no ranker: a pipeline that trains in seconds and still fits segment
#: popularity on the users' profiles (the tests of what a pipeline is fitted on).
TWO_SOURCE_PIPELINE = """
ranking = { enabled = false }
retrieval.sources = [
    { name = "knn", model = "itemknn", quota = 50 },
    { name = "top", model = "popular", quota = 20 },
]
"""


@pytest.fixture
def two_source_pipeline(tmp_path: Path) -> Path:
    """``TWO_SOURCE_PIPELINE`` written to ``tmp_path / "pipeline.toml"``."""
    path = tmp_path / "pipeline.toml"
    path.write_text(TWO_SOURCE_PIPELINE)
    return path


@pytest.fixture
def store_tiers() -> Callable[[str, Sequence[str]], list[User]]:
    """``store_tiers(url, user_ids)``: gives those users a profile in the store at ``url``,
    ``tier`` basic and gold in turn, and returns the profiles (``User``) stored."""
    from recsmith.store.open import open_store

    def stored(url: str, user_ids: Sequence[str]) -> list[User]:
        profiles = [
            User(user_id=u, properties={"tier": "gold" if n % 2 else "basic"})
            for n, u in enumerate(user_ids)
        ]
        store = open_store(url)
        try:
            store.upsert_users(profiles)
        finally:
            store.close()
        return profiles

    return stored


@pytest.fixture(scope="module")
def audit_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """For modules whose commands write the audit trail (deploy, rollback, experiment …) into
    the configured store: the default (``recsmith-data/`` under the working directory) would
    land in the repository, or in a quickstart user's own store there (``recommend`` logs its
    lists into the default store whenever it exists). Use with ``pytestmark =
    pytest.mark.usefixtures("audit_store")``; a test that names its own store (``--store``,
    ``env=``) still gets it. Yields its URL."""
    url = f"sqlite:///{tmp_path_factory.mktemp('audit') / 'store.sqlite'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RECSMITH_STORE__URL", url)
        yield url


@pytest.fixture
def library() -> Any:
    """``row_kernel``'s compiled library, built here if not cached (up to 2 minutes), for the
    tests of its passes; they skip where this machine cannot build it."""
    if not row_kernel.wait(120):
        pytest.skip(f"no compiled row kernel here: {row_kernel.unavailable_reason()}")
    return row_kernel.loaded()
