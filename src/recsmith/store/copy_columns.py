"""Events read out of PostgreSQL as columns: ``COPY (SELECT …) TO STDOUT`` in CSV, parsed by
pyarrow's CSV reader (C++), instead of rows fetched from a cursor.

A cursor's ``fetchmany`` makes psycopg build a Python tuple and ten Python values per event and
``frame_from_rows`` then takes them apart again column by column; training reads every event
this way (``scan``), so at tens of millions of events that is most of the read. Here the only
Python step per row is taking the COPY message from psycopg (``_CopyReader``); the text is parsed
into typed Arrow columns and handed to pandas as Arrow-backed strings and numpy numbers.

CSV, not COPY's text format: CSV tells NULL (an unquoted empty field) from an empty string
(``""``), and quotes what needs it, where pyarrow cannot undo the text format's backslash
escapes. Only the empty field is NULL: an id spelled ``NA`` or ``NULL`` stays that text.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from typing import Any

import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv

from recsmith.events.schema import EVENT_COLUMNS
from recsmith.store.base import positions

#: Arrow types of the event columns as stored (``postgres._SCHEMA``); the rest are text.
_TYPES: dict[str, pa.DataType] = {
    **{name: pa.string() for name in EVENT_COLUMNS},
    "value": pa.float64(),
    "ts": pa.int64(),
    "position": pa.int64(),
}
#: Bytes parsed at a time (the reader's block): a few batches of the default 100,000 events.
_BLOCK_BYTES = 16 << 20


class _CopyReader(io.RawIOBase):
    """The bytes of a running ``COPY … TO STDOUT`` as a file that pyarrow reads from."""

    def __init__(self, copy: psycopg.Copy, first: bytes) -> None:
        self._copy = copy
        self._left = first

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        """Whole COPY messages (one row each) until ``buffer`` is full or the COPY ends."""
        view = memoryview(buffer).cast("B")
        size, filled, left = len(view), 0, self._left
        read = self._copy.read
        while True:
            if left:
                take = min(len(left), size - filled)
                view[filled : filled + take] = left[:take]
                filled += take
                left = left[take:]
                if filled == size:
                    break
            left = bytes(read())
            if not left:
                break
        self._left = left
        return filled


def _frame(table: pa.Table) -> pd.DataFrame:
    """A canonical event frame (``base.frame_from_rows``'s dtypes) from the parsed columns:
    text as pandas' Arrow-backed strings (no Python string per cell), ``value`` float64 with NaN,
    ``ts`` int64, ``position`` ints and None."""
    frame = table.to_pandas()
    frame["position"] = positions(frame["position"].to_numpy())
    return frame


def copy_event_frames(
    cursor: psycopg.Cursor[Any], query: str, params: Sequence[object], batch_size: int
) -> Iterator[pd.DataFrame]:
    """The rows of ``query`` (selecting ``EVENT_COLUMNS`` in order) as canonical frames of
    ``batch_size`` rows (the last one shorter), in the query's order."""
    with cursor.copy(f"COPY ({query}) TO STDOUT (FORMAT csv)", params) as copy:
        first = bytes(copy.read())
        if not first:  # no rows: pyarrow refuses an empty file
            return
        reader = pacsv.open_csv(
            io.BufferedReader(_CopyReader(copy, first), buffer_size=1 << 20),
            read_options=pacsv.ReadOptions(
                column_names=list(EVENT_COLUMNS), block_size=_BLOCK_BYTES, use_threads=False
            ),
            # a context (JSON text) may hold a line break inside its quotes
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types=_TYPES,
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
            ),
        )
        pending: list[pa.RecordBatch] = []
        held = 0
        for batch in reader:
            pending.append(batch)
            held += batch.num_rows
            while held >= batch_size:
                table = pa.Table.from_batches(pending)
                yield _frame(table.slice(0, batch_size))
                rest = table.slice(batch_size)
                pending, held = rest.to_batches(), rest.num_rows
        if held:
            yield _frame(pa.Table.from_batches(pending))
