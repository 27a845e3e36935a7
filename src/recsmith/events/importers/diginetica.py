"""Format ``diginetica``: the DIGINETICA (CIKM Cup 2016) item-view log.

``train-item-views.csv`` (or the SR-GNN ``sample_train-item-views.csv``), semicolon-separated:
``session_id;user_id;item_id;timeframe;eventdate``. Every row is a ``view``. ``user_id`` is ``NA``
for anonymous sessions: those events keep their ``session_id`` and get no user, which the store
accepts for anonymous visitors (so session-based models still see them).

There is no time of day, only the date and ``timeframe``, the milliseconds since the session's first
event; the timestamp is midnight UTC of ``eventdate`` plus ``timeframe``, which keeps the order of
views inside a session. ``path`` may be the file (or ``.gz``) or the directory holding it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from recsmith.events.importers._common import (
    ImportSource,
    RawChunk,
    SourceNotFound,
    count_records,
    csv_chunks,
    find,
    stem,
)

FILE_NAMES = ("train-item-views.csv", "sample_train-item-views.csv")
ANONYMOUS = "NA"


def _locate(path: Path) -> Path:
    if path.is_file():
        return path
    if path.is_dir():
        for name in FILE_NAMES:
            if (found := find(path, name)) is not None:
                return found
        raise SourceNotFound(f"diginetica: {path} has no {' or '.join(FILE_NAMES)} (or .gz)")
    raise SourceNotFound(f"no such file or directory: {path}")


def read_diginetica(path: Path, chunk_rows: int = 100_000) -> ImportSource:
    """Item views from a DIGINETICA item-view file (or a directory holding one)."""
    views = _locate(path)
    return ImportSource(
        "diginetica",
        events=_views(views, chunk_rows),
        total_events=count_records(views, header=True),
    )


def view_timestamps(eventdate: pd.Series, timeframe: pd.Series) -> np.ndarray:
    """Unix milliseconds (midnight UTC of the date + ``timeframe`` ms), as Python ints.

    A row whose date or offset does not parse keeps both texts, which no timestamp parser accepts,
    so the validator dead-letters it with the original values in view.
    """
    day = pd.to_datetime(eventdate, format="%Y-%m-%d", errors="coerce")  # naive = UTC
    offset = pd.to_numeric(timeframe, errors="coerce")
    day_ms = day.to_numpy(dtype="datetime64[ms]").astype(np.int64)
    ok = day.notna().to_numpy() & offset.notna().to_numpy()
    out = np.empty(len(eventdate), dtype=object)
    ms = day_ms[ok] + offset.to_numpy(dtype=np.float64)[ok].round().astype(np.int64)
    out[ok] = ms.tolist()
    bad = np.flatnonzero(~ok)
    for row in bad:
        out[row] = f"{eventdate.iloc[row]} +{timeframe.iloc[row]}ms"
    return out


def _views(path: Path, chunk_rows: int) -> Iterator[RawChunk[pd.DataFrame]]:
    for offset, raw in csv_chunks(path, chunk_rows, sep=";"):
        users = raw["user_id"]
        frame = pd.DataFrame(
            {
                "session_id": raw["session_id"],
                "user_id": users.where(users != ANONYMOUS, None),
                "item_id": raw["item_id"],
                "event_type": "view",
                "timestamp": view_timestamps(raw["eventdate"], raw["timeframe"]),
            }
        )
        yield RawChunk(frame, offset, stem(path))
