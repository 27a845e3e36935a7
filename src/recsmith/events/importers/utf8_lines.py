"""A text file's lines where a byte that is not UTF-8 spoils its own record, not the import.

One stray Latin-1 byte used to stop a million-line import with a byte offset into the file
(and the chunks before it were already stored). Now a file is decoded with the ``MARKED`` error
handler: each such byte becomes a lone surrogate (as ``surrogateescape`` makes it) and bumps a
process-wide count. A reader looks for surrogates in its lines only once that count has moved
since it started (``Watch``), so a valid file is read at the decoder's full speed, and a line
that holds one becomes that record's rejection naming the line and the byte within it
(``undecoded``); the valid records around it are imported as ever.

The count is shared by every file read in the process: another thread's bad byte only makes a
reader look at lines it would have passed, never miss one of its own (a byte is counted when its
chunk is decoded, before any line of that chunk is handed out).
"""

from __future__ import annotations

import codecs
import io
import threading
from pathlib import Path
from typing import IO

from recsmith.events.importers._common import open_binary

#: The error handler ``open_lines`` decodes with (registered when this module is imported).
MARKED = "recsmith.marked"
_escape = codecs.lookup_error("surrogateescape")
_marks = [0]  # bytes not UTF-8 decoded so far, by every reader of the process
#: ``+=`` is a read and a write: two threads' bad bytes at once could lose one count and put the
#: total back to a reader's start value, hiding its byte. Only bad bytes take the lock, so a
#: valid file never does; reading the count needs none (a monotonic int is read whole).
_marks_lock = threading.Lock()


def _mark(exc: UnicodeError) -> tuple[str, int]:
    if isinstance(exc, UnicodeDecodeError):
        with _marks_lock:
            _marks[0] += exc.end - exc.start
    return _escape(exc)


codecs.register_error(MARKED, _mark)


def open_lines(path: Path) -> IO[str]:
    """Text stream over a plain or ``.gz`` file, BOM dropped, bytes that are not UTF-8 marked.
    ``newline=""`` leaves CRs to the csv module."""
    return io.TextIOWrapper(open_binary(path), encoding="utf-8-sig", errors=MARKED, newline="")


class Watch:
    """Whether a byte that was not UTF-8 has been decoded since this reader started."""

    __slots__ = ("_start",)

    def __init__(self) -> None:
        self._start = _marks[0]

    def moved(self) -> bool:
        return _marks[0] != self._start


def undecoded(line: str, number: int) -> str | None:
    """Where line ``number`` (from 1) held a byte that is not UTF-8, as a rejection's reason
    says it (the byte and its offset in the line, from 0), or None when it held none."""
    raw = line.encode("utf-8", "surrogateescape")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return (
            f"not UTF-8 text: byte 0x{raw[exc.start]:02x} at byte {exc.start} of line "
            f"{number}; re-save the file as UTF-8"
        )
    return None


def shown(text: str) -> str:
    """``text`` for a dead letter's payload: a byte that was not UTF-8 as ``\\xff``."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
