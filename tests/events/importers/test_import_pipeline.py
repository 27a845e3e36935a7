"""An import validates chunk N + 1 while chunk N is being stored: the results must be those of a
chunk-by-chunk import — positions in the file, duplicates and reused ids across chunks, progress."""

from __future__ import annotations

from pathlib import Path

from recsmith.config import EventSettings
from recsmith.events.importers import import_source, read_source
from recsmith.store.sqlite import SQLiteStore

TS = "2024-05-01T10:00:00Z"
ROWS = [  # chunk_rows=2: chunks are rows 0-1, 2-3, 4-5, 6
    ("e1", "u1", "i1"),
    ("e2", "u1", "i2"),
    ("e1", "u1", "i1"),  # e1 again, same event: a duplicate of chunk 1's
    ("e2", "u1", "i9"),  # e2 again for another item: a reused id, rejected at position 3
    ("e3", "u2", "i3"),
    ("e5", "u2", ""),  # no item: rejected at position 5
    ("e4", "u2", "i4"),
]


def test_chunks_stored_behind_validation_keep_file_positions_and_order(
    tmp_path: Path, store: SQLiteStore
) -> None:
    path = tmp_path / "events.csv"
    lines = ["event_id,user_id,item_id,timestamp", *(f"{e},{u},{i},{TS}" for e, u, i in ROWS)]
    path.write_text("\n".join(lines) + "\n")
    progress: list[int] = []
    result = import_source(
        store,
        read_source("events", path, chunk_rows=2),
        EventSettings(),
        on_progress=progress.append,
    )
    assert (result.accepted, result.duplicates) == (4, 1)
    assert [(r.index, [e.field for e in r.errors]) for r in result.rejected] == [
        (3, ["event_id"]),
        (5, ["item_id"]),
    ]
    assert progress == [2, 2, 2, 1]
    stored = {row.event_id: row.item_id for frame in store.scan() for row in frame.itertuples()}
    assert stored == {"e1": "i1", "e2": "i2", "e3": "i3", "e4": "i4"}
    assert sorted(d.record_index for d in store.dead_letters()) == [3, 5]
