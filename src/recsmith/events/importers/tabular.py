"""Reading a user's own file (CSV, JSONL or Parquet, by extension) as chunks of raw records.

Unlike the dataset readers, these files are not trusted to be well formed: a CSV line with the wrong
number of fields or a JSONL line that is not JSON becomes a rejection at its file position, and the
rest of the file is still read. Every cell is handed on as the Python value the file holds (CSV:
``str``; JSON: its own types, integer ids turned into their decimal text), never pandas-inferred
numbers, so ids such as ``"0739079891"`` survive unchanged.
"""

from __future__ import annotations

import csv
import gzip
import zlib
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pandas as pd

from recsmith.errors import ValidationError
from recsmith.events.importers._common import (
    RawChunk,
    count_records,
    object_frame,
    open_binary,
    require_file,
)
from recsmith.events.importers.utf8_lines import Watch, open_lines, shown, undecoded
from recsmith.events.records import object_column, records_frame
from recsmith.events.schema import FieldError, Rejection
from recsmith.json_text import REPEATED_KEY, decode, repeated_path

Record = dict[str, Any]
_KINDS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_MAX_PAYLOAD_CHARS = 2000
#: How much of a text file ``require_text`` looks at: a binary file shows itself at once.
_SNIFF_BYTES = 1 << 16
#: Bytes no CSV header and no JSON line holds outside a string: C0 controls but tab, CR and LF,
#: and DEL. (Inside a JSON string they must be escaped, so a raw one is never valid either.)
_CONTROL = frozenset(range(0x20)) - {0x09, 0x0A, 0x0D} | {0x7F}
#: Every byte but those: ``bytes.translate`` deletes them, leaving a head's control bytes.
_TEXT_BYTES = bytes(b for b in range(256) if b not in _CONTROL)
#: The share of control bytes from which a head is a binary file's: random or compressed bytes
#: hold about 12% (30 of 256 values), a PNG's, SQLite's or ELF's header far more; a text file
#: with a few bad records a fraction of a percent.
_BINARY_SHARE = 1 / 16


@dataclass(slots=True)
class Table:
    """A file opened for reading: its columns when the file declares them, and its chunks."""

    kind: str
    columns: list[str] | None
    chunks: Iterator[RawChunk[pd.DataFrame]]
    total: int | None


def file_kind(path: Path) -> str:
    """``csv``, ``jsonl`` or ``parquet`` from the extension; ``.gz`` is looked through."""
    name = path.name.lower()
    gz = name.endswith(".gz")
    suffix = Path(name[:-3] if gz else name).suffix
    kind = _KINDS.get(suffix)
    if kind is None or (gz and kind == "parquet"):
        raise ValidationError(
            "path",
            f"{path.name}: unsupported file type; expected .csv, .tsv, .jsonl or .parquet "
            "(CSV and JSONL may be .gz)",
        )
    return kind


def read_table(
    path: Path,
    chunk_rows: int,
    *,
    id_keys: Collection[str],
    prepare: Callable[[Record], Record] | None = None,
) -> Table:
    """Open ``path`` by its extension. ``id_keys`` name the columns whose integers become text.

    ``prepare`` is applied to each JSONL record before it is framed, while a missing key can still
    be told apart from an explicit null (used to default ``event_type`` per record).
    """
    require_file(path)
    kind = file_kind(path)
    if kind == "parquet":
        return _parquet(path, chunk_rows, id_keys)
    require_text(path, kind)
    if kind == "jsonl":
        return Table(
            kind,
            None,
            _jsonl(path, chunk_rows, id_keys, prepare),
            count_records(path, header=False),
        )
    columns, delimiter, spaced = _csv_header(path)
    rows = _csv(path, chunk_rows, columns, delimiter, spaced)
    return Table(kind, columns, rows, count_records(path, header=True))


def require_text(path: Path, kind: str) -> None:
    """Refuse, in one line naming the file, what cannot be a CSV or JSONL text file (an image, a
    database or an executable renamed ``.csv``), rather than reading its bytes as column names or
    as one rejected record after another: a ``.gz`` that is not gzip, a CSV header line holding a
    control byte (no column can match it), or control bytes making up a large share of the
    first 64 KiB (``_BINARY_SHARE``: a binary file's NULs and random bytes). One bad record, a
    stray NUL or a raw control byte in a JSONL string, is no such sign: it goes to the dead
    letters as a record of its own, wherever in the file it sits."""
    try:
        with open_binary(path) as fh:
            head = fh.read(_SNIFF_BYTES)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise ValidationError("path", f"{path.name}: not a gzip file ({exc})") from None
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):  # every line would be refused
        reason = f"{path.name}: UTF-16, not UTF-8 text; re-save it as UTF-8"
        raise ValidationError("encoding", reason)
    controls = head.translate(None, _TEXT_BYTES)  # what is left: the control bytes
    header = head.split(b"\n", 1)[0] if kind == "csv" else b""
    if len(controls) <= len(head) * _BINARY_SHARE and not header.translate(None, _TEXT_BYTES):
        return
    at = head.find(b"\x00")
    if at < 0:
        at = next(i for i, b in enumerate(head) if b in _CONTROL)
    raise ValidationError(
        "path",
        f"{path.name}: not a text file (control byte 0x{head[at]:02x} at byte {at}): "
        "expected CSV or JSONL text",
    )


@dataclass(slots=True)
class _Chunker:
    """Groups consecutive good records into chunks; a bad record ends the run it interrupts.

    A chunk's rows must be consecutive file records (validation reports ``offset + row``), so the
    good records before a bad one are flushed, and the bad one travels as a ready-made rejection.
    """

    source: str
    chunk_rows: int
    build: Callable[[list[Any]], pd.DataFrame]
    #: file position of ``rows[0]``; the rejections are all before it
    start: int = 0
    rows: list[Any] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)

    def good(self, row: Any) -> RawChunk[pd.DataFrame] | None:
        """Adds a record; returns the chunk it completes, if any. A plain call, not a generator:
        it runs once per record of the file."""
        self.rows.append(row)
        if len(self.rows) + len(self.rejections) >= self.chunk_rows:
            return self.flush()
        return None

    def bad(
        self, reason: str, payload: Record, field: str = "record"
    ) -> Iterator[RawChunk[pd.DataFrame]]:
        if self.rows:
            yield self.flush()
        self.rejections.append(Rejection(self.start, (FieldError(field, reason),), payload))
        self.start += 1
        if len(self.rejections) >= self.chunk_rows:
            yield self.flush()

    def flush(self) -> RawChunk[pd.DataFrame]:
        chunk = RawChunk(self.build(self.rows), self.start, self.source, tuple(self.rejections))
        self.start += len(self.rows)
        self.rows, self.rejections = [], []
        return chunk

    def pending(self) -> bool:
        return bool(self.rows or self.rejections)


# ---- CSV --------------------------------------------------------------------------------------


def _csv_header(path: Path) -> tuple[list[str], str, bool]:
    """The column names, the delimiter, and whether the file puts a space after each delimiter
    (``user_id, item_id, timestamp``): every name after the first starts with one. The names
    were read stripped but the values were not, so ``u1, i1`` stored the item `` i1``, an id no
    request for ``i1`` finds; in such a file a value's leading spaces are the file's style,
    not the id (``csv``'s ``skipinitialspace``; a quoted ``" i1"`` keeps its space)."""
    with open_lines(path) as fh:
        line = fh.readline()
    if not line.strip():
        raise ValidationError("path", f"{path.name}: empty file (a header line is needed)")
    if (where := undecoded(line, 1)) is not None:  # no record can be read without the columns
        raise ValidationError("encoding", f"{path.name}: {where}")
    delimiter = max((",", ";", "\t"), key=line.count)  # ties go to the comma, listed first
    header = next(csv.reader([line], delimiter=delimiter))
    spaced = delimiter != "\t" and len(header) > 1 and all(n[:1] == " " for n in header[1:])
    return [name.strip() for name in header], delimiter, spaced


def wrong_width(width: int, found: int, first: int, last: int) -> str:
    """Why a CSV record of ``found`` fields, read from lines ``first`` to ``last``, is refused.
    Spread over several lines, the record holds a quoted field with line breaks. The reader
    cannot tell a field meant to span lines from a quote left open (``"u4,i4``: the lines up to
    the next quote, or the end of the file, are read into one field and their records are not
    reported one by one), so the reason says what was read and names that cause as a possibility,
    with the line to look at: a quote that was closed must not be called open."""
    reason = f"expected {width} fields, found {found}"
    if last > first:
        reason += (
            f" (lines {first} to {last} were read as this one record: a quoted field spans them; "
            f"a quote left open on line {first} would read the lines after it into one field, "
            "up to the next quote or the end of the file)"
        )
    return reason


def _csv(
    path: Path, chunk_rows: int, columns: list[str], delimiter: str, spaced: bool
) -> Iterator[RawChunk[pd.DataFrame]]:
    width = len(columns)

    def build(rows: list[list[str]]) -> pd.DataFrame:
        return object_frame(pd.DataFrame(rows, columns=columns, dtype=object))

    chunker = _Chunker(path.name, chunk_rows, build)
    spoilt: dict[int, str] = {}  # line -> why it is not UTF-8 (``_watched``)
    with open_lines(path) as fh:
        reader = csv.reader(_watched(fh, spoilt), delimiter=delimiter, skipinitialspace=spaced)
        next(reader, None)
        line = reader.line_num  # the last line read before the next record
        while True:
            try:
                for row in reader:  # one loop over the file, left only on a csv.Error
                    if spoilt and (why := _spoilt(spoilt, line + 1, reader.line_num)):
                        fields = {"fields": [shown(f) for f in row[:50]]}
                        yield from chunker.bad(why, fields, "encoding")
                    elif len(row) == width:
                        if (chunk := chunker.good(row)) is not None:
                            yield chunk
                    elif row:  # blank lines are skipped, as pandas does
                        reason = wrong_width(width, len(row), line + 1, reader.line_num)
                        yield from chunker.bad(reason, {"fields": row[:50]})
                    line = reader.line_num
                break
            except csv.Error as exc:  # e.g. a field over the csv module's size limit
                yield from chunker.bad(f"not valid CSV: {exc}", {})
                line = reader.line_num
    if chunker.pending():
        yield chunker.flush()


def _watched(fh: IO[str], spoilt: dict[int, str]) -> Iterator[str]:
    """The file's lines for the csv reader, noting in ``spoilt`` each that held a byte that is
    not UTF-8 (looked for only once one was decoded: ``utf8_lines.Watch``)."""
    watch = Watch()
    for number, text in enumerate(fh, 1):
        if watch.moved() and (where := undecoded(text, number)) is not None:
            spoilt[number] = where
        yield text


def _spoilt(spoilt: dict[int, str], first: int, last: int) -> str | None:
    """Why the record read from lines ``first`` to ``last`` is not UTF-8 (its first such
    line), those lines forgotten; None when none of them held such a byte."""
    found = [spoilt.pop(n) for n in range(first, last + 1) if n in spoilt]
    return found[0] if found else None


# ---- JSONL ------------------------------------------------------------------------------------


def text_ids(record: Record, id_keys: Collection[str]) -> Record:
    """Integer ids as their decimal text (JSON writers often drop the quotes around numeric ids).

    Floats and booleans are left alone on purpose: ``1.0`` is not a faithful id, so the validator
    should refuse it rather than guess.
    """
    for key in id_keys:
        val = record.get(key)
        if isinstance(val, int) and not isinstance(val, bool):
            record[key] = str(val)
    return record


def _jsonl(
    path: Path,
    chunk_rows: int,
    id_keys: Collection[str],
    prepare: Callable[[Record], Record] | None,
) -> Iterator[RawChunk[pd.DataFrame]]:
    chunker = _Chunker(path.name, chunk_rows, records_frame)
    watch = Watch()
    with open_lines(path) as fh:
        for number, line in enumerate(fh, 1):
            text = line.strip()
            if not text:
                continue
            if watch.moved() and (where := undecoded(line, number)) is not None:
                yield from chunker.bad(
                    where, {"line": shown(text)[:_MAX_PAYLOAD_CHARS]}, "encoding"
                )
                continue
            try:  # strict: NaN, a repeated key, deep nesting are this line's rejection
                record, repeated = decode(text)
            except ValueError as exc:
                yield from chunker.bad(
                    f"not valid JSON: {exc}", {"line": text[:_MAX_PAYLOAD_CHARS]}
                )
                continue
            if not isinstance(record, dict):
                yield from chunker.bad("must be a JSON object", {"line": text[:_MAX_PAYLOAD_CHARS]})
                continue
            if repeated:
                field = repeated_path(record) or "record"
                yield from chunker.bad(REPEATED_KEY, {"line": text[:_MAX_PAYLOAD_CHARS]}, field)
                continue
            record = text_ids(record, id_keys)
            if (chunk := chunker.good(prepare(record) if prepare else record)) is not None:
                yield chunk
    if chunker.pending():
        yield chunker.flush()


# ---- Parquet ----------------------------------------------------------------------------------


def _parquet(path: Path, chunk_rows: int, id_keys: Collection[str]) -> Table:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pfile = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ValidationError("path", f"{path.name}: not a readable Parquet file: {exc}") from exc
    columns = list(pfile.schema_arrow.names)

    def textual(name: str, array: pa.Array) -> pa.Array:
        kind = array.type
        if name in id_keys and pa.types.is_integer(kind):
            return array.cast(pa.string())
        if name == "timestamp" and (pa.types.is_timestamp(kind) or pa.types.is_date(kind)):
            return array.cast(pa.string())  # ISO text; naive: see events.naive_timestamps
        return array

    def chunks() -> Iterator[RawChunk[pd.DataFrame]]:
        offset = 0
        for batch in pfile.iter_batches(batch_size=chunk_rows):
            data = {
                name: object_column(textual(name, batch.column(i)).to_pylist())
                for i, name in enumerate(batch.schema.names)
            }
            frame = pd.DataFrame(data, index=pd.RangeIndex(batch.num_rows))
            yield RawChunk(frame, offset, path.name)
            offset += batch.num_rows

    return Table("parquet", columns, chunks(), pfile.metadata.num_rows)
