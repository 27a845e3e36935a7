"""Format ``lastfm-hetrec``: the HetRec 2011 Last.fm directory (``hetrec2011-lastfm-2k``).

* ``user_artists.dat`` (``userID, artistID, weight``): one ``play`` event per (user, artist) pair
  with ``value`` = the play count, which the default weights turn into ``log(1 + plays)``;
* ``artists.dat`` (``id, name, url, pictureURL``, UTF-8): items, the name as text, ``url`` property;
* ``user_taggedartists.dat`` + ``tags.dat`` (latin-1): the artists' tags, most applied first.

All files are tab-separated with a header; some copies have CRLF line ends (stripped here; pandas'
parser treats ``\\r\\n`` as a line end too). Any file may be stored as ``<name>.gz``.

The data set has no listening times, only totals per pair, yet every event needs a timestamp. Each
play gets the same fixed instant, ``PLAY_TIMESTAMP`` (the month the data set was collected), rather
than the import time: the content-derived event id then depends on the file alone, so importing the
directory twice stores every play once (the second run reports duplicates). Time-based splits are
meaningless on this data set for the same reason; evaluate it with random or per-user splits.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from recsmith.events.importers._catalog import item_chunks, tags_by_item
from recsmith.events.importers._common import (
    ImportSource,
    ItemRecord,
    RawChunk,
    count_records,
    csv_chunks,
    find,
    need,
    read_lines,
    require_dir,
    stem,
)

#: The timestamp of every play (see the module docstring for why it is fixed).
PLAY_TIMESTAMP = "2011-05-01T00:00:00Z"


def read_lastfm_hetrec(path: Path, chunk_rows: int = 100_000) -> ImportSource:
    """Plays, artists and artist tags from the HetRec 2011 Last.fm directory ``path``."""
    require_dir(path)
    plays = need(path, "user_artists.dat", "lastfm-hetrec")
    return ImportSource(
        "lastfm-hetrec",
        events=_plays(plays, chunk_rows),
        items=_artists(path, chunk_rows),
        total_events=count_records(plays, header=True),
    )


def _plays(path: Path, chunk_rows: int) -> Iterator[RawChunk[pd.DataFrame]]:
    for offset, raw in csv_chunks(path, chunk_rows, sep="\t"):
        raw.columns = [str(c).strip() for c in raw.columns]
        frame = pd.DataFrame(
            {
                "user_id": raw["userID"],
                "item_id": raw["artistID"],
                "value": raw["weight"].str.rstrip("\r"),
                "event_type": "play",
                "timestamp": PLAY_TIMESTAMP,
            }
        )
        yield RawChunk(frame, offset, stem(path))


def _tab_rows(path: Path) -> Iterator[list[str]]:
    """Data rows of a small tab-separated file (header skipped, CRs stripped, encoding guessed)."""
    lines = read_lines(path)
    return (line.split("\t") for line in lines[1:])


def _artist_tags(path: Path) -> dict[str, list[str]]:
    tags_file = find(path, "tags.dat")
    tagged = find(path, "user_taggedartists.dat")
    if tags_file is None or tagged is None:
        return {}
    names = {row[0]: row[1] for row in _tab_rows(tags_file) if len(row) >= 2}
    frame = pd.read_csv(
        tagged, sep="\t", dtype=str, keep_default_na=False, usecols=["artistID", "tagID"]
    )
    values = frame["tagID"].map(names)  # tag ids missing from tags.dat become NaN and are dropped
    return tags_by_item(frame["artistID"].to_numpy(dtype=object), values.to_numpy(dtype=object))


def _artists(path: Path, chunk_rows: int) -> Iterator[RawChunk[list[ItemRecord]]]:
    artists = find(path, "artists.dat")
    if artists is None:
        return iter(())

    def records() -> Iterator[ItemRecord]:
        tags = _artist_tags(path)
        for row in _tab_rows(artists):
            artist_id, name, url = [*row, "", ""][:3]
            yield {
                "item_id": artist_id,
                "text": name or None,
                "tags": tags.get(artist_id, []),
                "properties": {"url": url} if url else {},
            }

    return item_chunks(records(), stem(artists), chunk_rows)
