"""HetRec 2011 Last.fm importer on the real files (CRLF, latin-1 tags, gz)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from recsmith.config import EventSettings
from recsmith.events.importers import import_source, read_source
from recsmith.events.importers.lastfm import PLAY_TIMESTAMP
from recsmith.store.sqlite import SQLiteStore


@pytest.mark.slow
def test_lastfm_plays_artists_and_tags(
    dataset: Callable[[str], Path], store: SQLiteStore, settings: EventSettings
) -> None:
    path = dataset("lastfm-hetrec2011")
    source = read_source("lastfm-hetrec", path)
    assert source.total_events == 92_834
    result = import_source(store, source, settings)
    assert result.accepted == 92_834
    assert result.rejected_count == 0
    assert result.items.accepted == 17_632

    events = pd.concat(list(store.scan()), ignore_index=True)
    assert set(events["event_type"]) == {"play"}
    assert events["ts"].nunique() == 1
    assert events["ts"].iloc[0] == int(pd.Timestamp(PLAY_TIMESTAMP).timestamp() * 1_000_000)
    first = events[(events["user_id"] == "2") & (events["item_id"] == "51")]
    assert first["value"].tolist() == [13_883.0]  # CRLF stripped: the count parses
    assert events["value"].max() == 352_698.0

    artist = store.get_item("1")
    assert artist is not None and artist.text == "MALICE MIZER"
    assert artist.properties == {"url": "http://www.last.fm/music/MALICE+MIZER"}
    assert "j-rock" in artist.tags
    all_tags = {t for item in store.items() for t in item.tags}
    assert {"tropic\u00e1lia", "espa\u00f1ol"} <= all_tags  # latin-1 decoded

    again = import_source(store, read_source("lastfm-hetrec", path), settings)
    assert (again.accepted, again.duplicates) == (0, 92_834)  # fixed timestamp: same event ids


def test_lastfm_needs_user_artists(tmp_path: Path) -> None:
    from recsmith.events.importers import SourceNotFound

    with pytest.raises(SourceNotFound, match=r"user_artists\.dat"):
        read_source("lastfm-hetrec", tmp_path)
