"""Shared pieces of the importers: the chunk/source types and file helpers.

Kept apart from ``base`` (which maps format names to readers) so the reader modules can import these
without an import cycle.
"""

from __future__ import annotations

import gzip
import io
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Generic, TypeVar

import pandas as pd

from recsmith.errors import ValidationError
from recsmith.events.schema import Rejection

T = TypeVar("T")
ItemRecord = dict[str, Any]

#: Files up to this many (decompressed) bytes are counted exactly for the progress total.
_EXACT_COUNT_BYTES = 32 * 1024 * 1024
_SAMPLE_BYTES = 1024 * 1024


class SourceNotFound(ValidationError, FileNotFoundError):
    """The path given to an importer (or a file the format needs inside it) does not exist.

    Both a ``ValidationError`` (so the CLI reports it like any bad argument) and a
    ``FileNotFoundError`` (so plain Python callers can catch what they expect).
    """

    def __init__(self, reason: str) -> None:
        ValidationError.__init__(self, "path", reason)


@dataclass(frozen=True, slots=True)
class RawChunk(Generic[T]):
    """A run of consecutive records from one file, not yet validated.

    ``rows`` holds records ``offset, offset + 1, ...`` of ``source`` (0-based, header not counted),
    so validation can report positions in the file. ``rejections`` are records of the same file that
    could not even be parsed (malformed JSON, wrong number of fields), already carrying their own
    file positions; they are never part of ``rows``.
    """

    rows: T
    offset: int
    source: str
    rejections: tuple[Rejection, ...] = ()

    def __len__(self) -> int:
        return len(self.rows) + len(self.rejections)  # type: ignore[arg-type]


def _nothing() -> Iterator[Any]:
    return iter(())


@dataclass(slots=True)
class ImportSource:
    """What a reader hands to ``import_source``: lazy event and item chunks, plus a size hint.

    ``events`` yields raw input-field frames (``user_id``, ``item_id``, ``event_type``, ``value``,
    ``timestamp``, ``session_id``, ``event_id``, ``context``; ids as ``str`` or None, never
    numbers); ``items`` yields lists of ``Item``-shaped dicts. Both are single-use iterators that
    read the files only when consumed, so a reader call is cheap and fails early only on a wrong
    path or layout.
    ``total_events`` is for a progress bar and may be an estimate.
    """

    format: str
    events: Iterator[RawChunk[pd.DataFrame]] = field(default_factory=_nothing)
    items: Iterator[RawChunk[list[ItemRecord]]] = field(default_factory=_nothing)
    #: user profiles (``User``-shaped dicts), stored after the catalogue
    users: Iterator[RawChunk[list[dict[str, Any]]]] = field(default_factory=_nothing)
    total_events: int | None = None


# ---- paths and files --------------------------------------------------------------------------


def require_file(path: Path) -> Path:
    """``path`` itself, when it is a file; a clear error otherwise."""
    if not path.exists():
        raise SourceNotFound(f"no such file: {path}")
    if not path.is_file():
        raise SourceNotFound(f"expected a file, found a directory: {path}")
    return path


def require_dir(path: Path) -> Path:
    if not path.exists():
        raise SourceNotFound(f"no such directory: {path}")
    if not path.is_dir():
        raise SourceNotFound(f"expected a directory of the dataset's files, found a file: {path}")
    return path


def find(directory: Path, name: str) -> Path | None:
    """``directory/name``, or its gzip-compressed twin ``name.gz`` (as datasets are often kept)."""
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def need(directory: Path, name: str, fmt: str) -> Path:
    found = find(directory, name)
    if found is None:
        raise SourceNotFound(f"{fmt}: {directory} has no {name} (or {name}.gz)")
    return found


def stem(path: Path) -> str:
    """The file name without a trailing ``.gz``: what the format's documentation calls the file."""
    return path.name[:-3] if path.name.endswith(".gz") else path.name


def open_binary(path: Path) -> IO[bytes]:
    return gzip.open(path, "rb") if path.name.endswith(".gz") else path.open("rb")


def decode(data: bytes) -> str:
    """UTF-8 when the bytes are valid UTF-8, else latin-1 (old GroupLens/HetRec files are latin-1).

    Latin-1 text with accents is practically never valid UTF-8, so the guess is safe, and it also
    reads the releases that switched to UTF-8 (e.g. MovieLens 10M/20M).
    """
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def read_lines(path: Path) -> list[str]:
    """All non-blank lines of a small file, CR line ends stripped, encoding guessed (``decode``)."""
    with open_binary(path) as fh:
        text = decode(fh.read())
    return [line.rstrip("\r") for line in text.split("\n") if line.strip()]


def _decompressed_size(path: Path) -> int:
    size = path.stat().st_size
    if not path.name.endswith(".gz") or size < 18:
        return size
    with path.open("rb") as fh:  # gzip's trailer stores the input size mod 2**32 (ISIZE)
        fh.seek(-4, io.SEEK_END)
        isize = int(struct.unpack("<I", fh.read(4))[0])
    # ISIZE wraps for files over 4 GiB; text shrinks when compressed, so a large file whose ISIZE
    # is below its compressed size has wrapped (tiny files may legitimately grow).
    while size > _SAMPLE_BYTES and isize < size:
        isize += 1 << 32
    return isize


def count_records(path: Path, *, header: bool) -> int:
    """Lines (minus the header): exact for small files, else estimated from the first MiB.

    Only a progress-bar total, so blank lines or quoted fields spanning lines may make it slightly
    off. A line ends as the readers end it (``utf8_lines.open_lines``): at LF, CRLF or a bare CR
    (a file saved by an old Mac editor counted one line where it holds thousands). A last line
    without an ending still counts.
    """
    total = _decompressed_size(path)
    lines = 0
    last = b"\n"
    with open_binary(path) as fh:
        if total <= _EXACT_COUNT_BYTES:
            while block := fh.read(_SAMPLE_BYTES):
                lines += _endings(block) - (last == b"\r" and block[:1] == b"\n")  # CR|LF split
                last = block[-1:]
            lines += last not in (b"\n", b"\r")
        else:
            sample = fh.read(_SAMPLE_BYTES)
            lines = round(_endings(sample) * total / max(len(sample), 1))
    return max(lines - int(header), 0)


def _endings(block: bytes) -> int:
    """Line endings in ``block``: each LF, each CR not followed by LF (CRLF is one)."""
    return block.count(b"\n") + block.count(b"\r") - block.count(b"\r\n")


def object_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Object columns, ``""`` as None: the finish of ``read_csv(dtype=str, keep_default_na=False)``.

    ``keep_default_na=False`` keeps ids such as ``"NA"`` or ``"0739079891"`` exactly; empty cells
    are then turned into None here so the validator sees them as missing.
    """
    frame = frame.astype(object)
    return frame.where(frame != "", None)


def csv_chunks(path: Path, chunk_rows: int, **read_csv: Any) -> Iterator[tuple[int, pd.DataFrame]]:
    """``(offset, frame)`` pairs from pandas' C parser: every cell a str or None, ids kept verbatim.

    For the datasets' own, well-formed files; user CSVs go through ``tabular`` instead, which turns
    a malformed line into a rejection rather than an exception.
    """
    offset = 0
    reader = pd.read_csv(path, dtype=str, keep_default_na=False, chunksize=chunk_rows, **read_csv)
    with reader:
        for frame in reader:
            yield offset, object_frame(frame)
            offset += len(frame)
