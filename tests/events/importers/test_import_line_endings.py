"""A rejection's line number counts lines as an editor shows them whatever ends them: LF, CRLF,
a bare CR (old Mac files), or a mix of the three in one file; the lines are counted here by hand
in each case, and the progress total counts the same lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from recsmith.config import EventSettings
from recsmith.events.importers import _common, import_source, read_source
from recsmith.events.importers._common import count_records
from recsmith.store.sqlite import SQLiteStore

UTF8 = "not UTF-8 text: byte 0xff at byte {} of line {}; re-save the file as UTF-8"
#: lines 1-9 of a CSV file; what each line's rejection says (by hand: the header is line 1)
CSV_LINES = [
    b"user_id,item_id,timestamp",
    b"u,a,1704103200",
    b"u,b\xff,1704103201",  # line 3: "u,b" is bytes 0-2, the bad byte 3
    b"u,c,1704103202",
    b"u,d",  # line 5: 2 fields
    b"",  # line 6: blank, skipped
    b"u,e,1704103203",
    b'u,"f',  # line 8: a quote left open, read with line 9 as one record
    b'g",1704103204,x',
]
CSV_REASONS = {
    1: UTF8.format(3, 3),
    3: "expected 3 fields, found 2",
    5: "expected 3 fields, found 4 (lines 8 to 9",
}
#: the endings after lines 1-9 for each case; "mixed" uses all three (never a CR ending a line
#: before an empty line ending in LF: that CR and LF are one CRLF, to an editor too)
ENDINGS = {
    "lf": [b"\n"] * 9,
    "crlf": [b"\r\n"] * 9,
    "cr": [b"\r"] * 9,
    "mixed": [b"\r", b"\r\n", b"\n", b"\r", b"\r\n", b"\n", b"\r", b"\r\n", b"\r"],
}


def _reasons(store: SQLiteStore) -> dict[int, str]:
    return {d.record_index: d.errors[0]["reason"] for d in store.dead_letters(limit=100)}


@pytest.mark.parametrize("case", ENDINGS)
def test_csv_rejections_name_the_lines_an_editor_shows(
    tmp_path: Path, store: SQLiteStore, settings: EventSettings, case: str
) -> None:
    path = tmp_path / f"{case}.csv"
    path.write_bytes(
        b"".join(line + end for line, end in zip(CSV_LINES, ENDINGS[case], strict=True))
    )
    result = import_source(store, read_source("events", path), settings)
    assert (result.accepted, result.rejected_count) == (3, 3)
    reasons = _reasons(store)
    assert reasons.keys() == CSV_REASONS.keys()
    for index, start in CSV_REASONS.items():
        assert reasons[index].startswith(start), (index, reasons[index])
    assert count_records(path, header=True) == 8  # lines 2-9, the blank one and both of 8-9


@pytest.mark.parametrize("case", ENDINGS)
def test_jsonl_rejections_name_the_lines_an_editor_shows(
    tmp_path: Path, store: SQLiteStore, settings: EventSettings, case: str
) -> None:
    record = b'{"user_id": "u", "item_id": "%s", "timestamp": 1704103200}'  # %s at byte 29
    lines = [record % b"a", b"", record % b"\xff", b"{not json", record % b"b", b"", b"", b"",
             record % b"c\xff"]  # fmt: skip
    path = tmp_path / f"{case}.jsonl"
    path.write_bytes(b"".join(line + end for line, end in zip(lines, ENDINGS[case], strict=True)))
    result = import_source(store, read_source("events", path), settings)
    assert (result.accepted, result.rejected_count) == (2, 3)
    reasons = _reasons(store)
    assert reasons[1] == UTF8.format(29, 3)
    assert reasons[2].startswith("not valid JSON")
    assert reasons[4] == UTF8.format(30, 9)
    assert count_records(path, header=False) == 9


@pytest.mark.parametrize("end", [b"\r\n", b"\r"])
def test_an_ending_split_by_the_decoders_buffer_is_one_line(
    tmp_path: Path,
    store: SQLiteStore,
    settings: EventSettings,
    end: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The text reader decodes 8,192 bytes at a time: a CR as the last byte of one read (its LF,
    if any, the first of the next) ends one line, not two; lines counted past the split are
    right. Blank lines pad the file so that a record's line ends with that CR. ``count_records``
    reads 1 MiB at a time: its blocks are made 8,192 bytes here, split at the same place."""
    monkeypatch.setattr(_common, "_SAMPLE_BYTES", 8192)
    head = b"user_id,item_id,timestamp" + end + b"u,x,1704103200" + end
    room = 8191 - len(head) - len(b"u,y,1704103201")  # bytes of blank lines and y's to fill
    blank, wide = divmod(room, len(end))  # ``wide`` more y's where CRLF's 2 bytes leave one over
    record = b"u,y" + b"y" * wide + b",1704103201"
    body = head + end * blank + record + end + b"u,w\xff,1704103202" + end + b"u,v,1704103203" + end
    assert body[8191:8192] == b"\r" and body[8191 - len(record) : 8191] == record
    path = tmp_path / "split.csv"
    path.write_bytes(body)
    result = import_source(store, read_source("events", path), settings)
    assert (result.accepted, result.rejected_count) == (3, 1)
    assert _reasons(store) == {2: UTF8.format(3, blank + 4)}  # header, x, blanks, y: then w
    assert count_records(path, header=True) == blank + 4
