"""MovieLens importer on the real ML-100K and ml-latest-small files, and generated layouts."""

from __future__ import annotations

import gzip
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from recsmith.config import EventSettings
from recsmith.errors import ValidationError
from recsmith.events.importers import import_source, read_source
from recsmith.store.sqlite import SQLiteStore


def _events(store: SQLiteStore) -> pd.DataFrame:
    return pd.concat(list(store.scan()), ignore_index=True)


@pytest.mark.slow
def test_ml100k_import_then_reimport_is_idempotent(
    dataset: Callable[[str], Path], store: SQLiteStore, settings: EventSettings
) -> None:
    path = dataset("movielens-100k")
    source = read_source("movielens", path)
    assert source.total_events == 100_000
    progress: list[int] = []

    started = time.perf_counter()
    first = import_source(store, source, settings, on_progress=progress.append)
    elapsed = time.perf_counter() - started
    print(f"ml-100k import: {elapsed:.2f}s")

    assert first.accepted == 100_000
    assert first.rejected_count == 0 and first.duplicates == 0
    assert first.items.accepted == 1_682
    assert sum(progress) == 100_000
    assert store.count_events() == 100_000

    second = import_source(store, read_source("movielens", path), settings)
    assert second.accepted == 0
    assert second.duplicates == 100_000
    assert store.count_events() == 100_000

    events = _events(store)
    assert set(events["event_type"]) == {"rating"}
    assert events["value"].value_counts().to_dict() == {
        4.0: 34_174,
        3.0: 27_145,
        5.0: 21_201,
        2.0: 11_370,
        1.0: 6_110,
    }
    assert events["user_id"].nunique() == 943
    assert events["ts"].min() == 874_724_710 * 1_000_000  # 1997-09-20, Unix seconds read as such


def test_ml100k_items_are_latin1_with_genres(
    dataset: Callable[[str], Path], store: SQLiteStore, settings: EventSettings, tmp_path: Path
) -> None:
    src = dataset("movielens-100k")
    # Only the catalog matters here: a copy with a one-line u.data keeps the test fast.
    small = tmp_path / "ml-100k"
    small.mkdir()
    for name in ("u.item", "u.genre"):
        (small / name).write_bytes((src / name).read_bytes())
    with gzip.open(src / "u.data.gz", "rb") as fh:
        (small / "u.data").write_bytes(fh.readline())
    result = import_source(store, read_source("movielens", small), settings)
    assert (result.accepted, result.items.accepted) == (1, 1_682)

    toy = store.get_item("1")
    assert toy is not None and toy.text == "Toy Story (1995)"
    assert toy.categories == ["Animation", "Children's", "Comedy"]
    assert toy.properties["release_date"] == "01-Jan-1995"
    unknown = store.get_item("267")
    assert unknown is not None and "release_date" not in unknown.properties
    accented = [i.text for i in store.items() if i.text and "\u00e9" in i.text]
    assert accented, "latin-1 0xE9 must decode to e-acute"


@pytest.mark.slow
def test_ml_latest_small_has_ratings_and_tags(
    dataset: Callable[[str], Path], store: SQLiteStore, settings: EventSettings
) -> None:
    result = import_source(
        store, read_source("movielens", dataset("movielens-latest-small")), settings
    )
    assert result.accepted == 100_836
    assert result.rejected_count == 0
    assert result.items.accepted == 9_742
    items = store.items()
    assert sum(1 for i in items if i.tags) > 1_000
    toy = store.get_item("1")
    assert toy is not None and "pixar" in toy.tags
    assert toy.properties["imdb_id"] == "0114709"  # leading zero kept
    assert sum(1 for i in items if not i.categories) == 34  # "(no genres listed)"
    assert set(_events(store)["value"]) == {x / 2 for x in range(1, 11)}


def test_ml1m_layout(tmp_path: Path, store: SQLiteStore, settings: EventSettings) -> None:
    ml = tmp_path / "ml-1m"
    ml.mkdir()
    (ml / "ratings.dat").write_text(
        "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n"
    )
    (ml / "movies.dat").write_bytes(
        "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
        "661::James and the Giant Peach (1996)::Animation|Children's|Musical\n"
        "2::Star Wars: Episode V::Am\u00e9lie::Action\n".encode("latin-1")
    )
    source = read_source("movielens", ml)
    assert source.total_events == 3
    result = import_source(store, source, settings)
    assert (result.accepted, result.items.accepted) == (3, 3)
    peach = store.get_item("661")
    assert peach is not None and peach.categories == ["Animation", "Children's", "Musical"]
    colons = store.get_item("2")
    assert colons is not None and colons.text == "Star Wars: Episode V::Am\u00e9lie"
    assert colons.categories == ["Action"]
    assert sorted(_events(store)["value"]) == [3.0, 4.0, 5.0]


def test_gz_ratings_csv(tmp_path: Path, store: SQLiteStore, settings: EventSettings) -> None:
    ml = tmp_path / "ml-latest"
    ml.mkdir()
    with gzip.open(ml / "ratings.csv.gz", "wt") as fh:
        fh.write("userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,4.5,964981247\n")
    result = import_source(store, read_source("movielens", ml), settings)
    assert result.accepted == 2 and result.items.accepted == 0


def test_not_a_movielens_directory(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="MovieLens"):
        read_source("movielens", tmp_path)
    (tmp_path / "u.data").write_text("")
    with pytest.raises(ValidationError, match="directory"):
        read_source("movielens", tmp_path / "u.data")
