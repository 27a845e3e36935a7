"""DIGINETICA importer on the real SR-GNN sample: views, anonymous sessions, derived timestamps."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from recsmith.config import EventSettings
from recsmith.events.importers import import_source, read_source
from recsmith.store.sqlite import SQLiteStore


def test_diginetica_sample_views(
    dataset: Callable[[str], Path], store: SQLiteStore, settings: EventSettings
) -> None:
    path = dataset("diginetica-sample")
    source = read_source("diginetica", path)  # the directory; the file works too
    assert source.total_events == 12_391
    result = import_source(store, source, settings)
    assert result.accepted == 12_391
    assert result.rejected_count == 0

    events = pd.concat(list(store.scan()), ignore_index=True)
    assert set(events["event_type"]) == {"view"}
    anonymous = events[events["user_id"].isna()]
    assert len(anonymous) == 12_391 - 4_710
    assert anonymous["session_id"].notna().all()
    assert events["session_id"].nunique() == 2_986
    assert events["user_id"].nunique() == 1_270
    assert events["item_id"].nunique() == 7_139

    # first row: session 1, 2016-05-09, timeframe 526309 ms
    row = events[(events["session_id"] == "1") & (events["item_id"] == "81766")]
    expected = pd.Timestamp("2016-05-09", tz="UTC") + pd.Timedelta(milliseconds=526_309)
    assert row["ts"].tolist() == [expected.value // 1_000]


def test_diginetica_file_path_and_bad_rows(
    tmp_path: Path, store: SQLiteStore, settings: EventSettings
) -> None:
    views = tmp_path / "train-item-views.csv"
    views.write_text(
        "session_id;user_id;item_id;timeframe;eventdate\n"
        "1;NA;0081766;526309;2016-05-09\n"
        "2;77;31331;abc;2016-05-09\n"
        "3;78;31331;100;2016-13-40"
    )
    result = import_source(store, read_source("diginetica", views), settings)
    assert result.accepted == 1
    assert sorted(r.index for r in result.rejected) == [1, 2]
    assert all(r.errors[0].field == "timestamp" for r in result.rejected)
    events = pd.concat(list(store.scan()), ignore_index=True)
    assert events["item_id"].tolist() == ["0081766"]
