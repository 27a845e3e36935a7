"""Events read out of PostgreSQL as columns: ``COPY (SELECT …) TO STDOUT`` in CSV, parsed by
pyarrow's CSV reader (C++), instead of rows fetched from a cursor.

A cursor's ``fetchmany`` makes psycopg build a Python tuple and ten Python values per event and
``frame_from_rows`` then takes them apart again column by column; training reads every event
this way (``scan``), so at tens of millions of events that is most of the read. Here the only
Python step per row is taking the COPY message from psycopg (``_next_rows``); the text is parsed
into typed Arrow columns and handed to pandas as Arrow-backed strings and numpy numbers.

CSV, not COPY's text format: CSV tells NULL (an unquoted empty field) from an empty string
(``""``), and quotes what needs it, where pyarrow cannot undo the text format's backslash
escapes. Only the empty field is NULL: an id spelled ``NA`` or ``NULL`` stays that text.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import islice
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
#: COPY messages joined at a time (``_next_rows``).
_GROUP = 256
#: One block per batch (100,000 events are ~6 MB of CSV); one thread: training's own threads
#: wait for the read anyway, and a server's other threads should not.
_READ = pacsv.ReadOptions(column_names=list(EVENT_COLUMNS), block_size=64 << 20, use_threads=False)
#: a context (JSON text) may hold a line break inside its quotes
_PARSE = pacsv.ParseOptions(newlines_in_values=True)
_CONVERT = pacsv.ConvertOptions(
    column_types=_TYPES,
    null_values=[""],
    strings_can_be_null=True,
    quoted_strings_can_be_null=False,
)


def _frame(table: pa.Table) -> pd.DataFrame:
    """A canonical event frame (``base.frame_from_rows``'s dtypes) from the parsed columns:
    text as pandas' Arrow-backed strings (no Python string per cell), ``value`` float64 with NaN,
    ``ts`` int64, ``position`` ints and None."""
    frame = table.to_pandas()
    frame["position"] = positions(frame["position"].to_numpy())
    return frame


def _next_rows(messages: Iterator[Any], count: int) -> bytes:
    """The next ``count`` COPY messages (fewer at the end) as one buffer. Joined in groups of
    ``_GROUP``: each message is a view of a libpq buffer, and holding a whole batch of them
    before joining took 3x as long (1M events: 8.9 s against 2.5 s, freed in one go)."""
    groups: list[bytes] = []
    while count > 0:
        group = list(islice(messages, min(count, _GROUP)))
        if not group:
            break
        groups.append(b"".join(group))
        count -= len(group)
    return b"".join(groups)


def copy_event_frames(
    cursor: psycopg.Cursor[Any], query: str, params: Sequence[object], batch_size: int
) -> Iterator[pd.DataFrame]:
    """The rows of ``query`` (selecting ``EVENT_COLUMNS`` in order) as canonical frames of
    ``batch_size`` rows (the last one shorter), in the query's order.

    PostgreSQL sends each row of a COPY as one message, so a batch is ``batch_size`` messages
    joined and parsed at once, on this thread (pyarrow's streaming reader calls back into Python
    from its own thread for every block, and measured slower)."""
    with cursor.copy(f"COPY ({query}) TO STDOUT (FORMAT csv)", params) as copy:
        messages = iter(copy.read, b"")
        while text := _next_rows(messages, batch_size):
            table = pacsv.read_csv(
                pa.py_buffer(text),
                read_options=_READ,
                parse_options=_PARSE,
                convert_options=_CONVERT,
            )
            yield _frame(table)
