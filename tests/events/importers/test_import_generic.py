"""Format ``events``: a CSV, JSONL or Parquet file; good rows kept, bad ones explained."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recsmith.config import EventSettings
from recsmith.errors import ValidationError
from recsmith.events.importers import SourceNotFound, base, import_source, read_source
from recsmith.events.importers.generic import read_events
from recsmith.store.sqlite import SQLiteStore

HEADER = "user_id,item_id,event_type,value,timestamp"
GOOD = [
    "u1,i1,view,,2024-01-01T10:00:00Z",
    "u1,i2,rating,4.5,1704103200",
    "u2,i1,purchase,,1704103200000",
    'u2,"i,3",click,,2024-01-02 10:00:00+01:00',
    "u3,i4,play,12,2024-01-03T00:00:00Z",
]
BAD = {  # reason fragment per corrupted row
    "u1,i1,view,,yesterday": ("timestamp", "not a date-time"),
    "u1,,view,,2024-01-01T10:00:00Z": ("item_id", "required"),
    "u1,i1,rating,NaN,2024-01-01T10:00:00Z": ("value", "must be a number"),
    "u1,i1,like,,2024-01-01T10:00:00Z": ("event_type", "unknown event type"),
    "u1,i1,view,,2024-01-01T10:00:00Z,extra": ("record", "expected 5 fields, found 6"),
    "u1,i1,rating,,2024-01-01T10:00:00Z": ("value", "required"),
    "u1,i1,view,,1990-01-01T00:00:00Z": ("timestamp", "before 1995"),
}


def _events(store: SQLiteStore) -> pd.DataFrame:
    return pd.concat(list(store.scan()), ignore_index=True)


def test_corrupted_csv_keeps_every_good_row(
    tmp_path: Path, store: SQLiteStore, settings: EventSettings
) -> None:
    lines: list[str] = []
    expected_bad: dict[int, tuple[str, str]] = {}
    bad_rows = list(BAD.items())
    for i, good in enumerate(GOOD):  # interleave: good, bad, good, bad, ...
        lines.append(good)
        if i < len(bad_rows):
            expected_bad[len(lines)] = bad_rows[i][1]
            lines.append(bad_rows[i][0])
    for row, reason in bad_rows[len(GOOD) :]:
        expected_bad[len(lines)] = reason
        lines.append(row)
    path = tmp_path / "events.csv"
    path.write_text("\n".join([HEADER, *lines]) + "\n\n")  # trailing blank line is ignored

    progress: list[int] = []
    source = read_source("events", path, chunk_rows=3)  # chunks cross the bad rows
    assert source.total_events == len(lines) + 1  # a progress hint: the blank line is counted
    result = import_source(store, source, settings, on_progress=progress.append)

    assert result.accepted == len(GOOD)
    assert result.rejected_count == len(BAD)
    assert sum(progress) == len(lines)
    assert sorted(_events(store)["item_id"]) == ["i,3", "i1", "i1", "i2", "i4"]

    dead = store.dead_letters(limit=100)
    assert sorted(d.record_index for d in dead) == sorted(expected_bad)
    for letter in dead:
        field, fragment = expected_bad[letter.record_index]
        assert letter.source == "events.csv"
        assert any(e["field"] == field and fragment in e["reason"] for e in letter.errors), letter
    by_index = {d.record_index: d for d in dead}
    assert by_index[1].payload["timestamp"] == "yesterday"  # the raw record is kept for replay


def test_a_quote_left_open_is_named_by_the_line_it_opened_on(
    tmp_path: Path, store: SQLiteStore, settings: EventSettings
) -> None:
    """A quote left open on line 4 takes the lines after it into one field, to the end of the
    file: one record of the wrong width, whose reason says which lines it took and where the
    quote opened (it said only "found 1", of a file whose last rows were silently gone)."""
    path = tmp_path / "events.csv"
    path.write_text(
        f"{HEADER}\n{GOOD[0]}\n{GOOD[1]}\n"
        '"u4,i4,view,,2024-01-01T10:00:00Z\n'  # line 4: the quote left open
        f"{GOOD[2]}\n{GOOD[4]}\n"
    )
    result = import_source(store, read_source("events", path), settings)
    assert result.accepted == 2 and result.rejected_count == 1
    (letter,) = store.dead_letters(limit=10)
    assert letter.record_index == 2  # the third record
    # the oracle: the file's line numbers, counted by hand (the header is line 1)
    assert letter.errors == [
        {
            "field": "record",
            "reason": "expected 5 fields, found 1 (lines 4 to 6 were read as this one record: "
            "a quoted field spans them; a quote left open on line 4 would read the lines after "
            "it into one field, up to the next quote or the end of the file)",
        }
    ]


def test_a_closed_quote_over_two_lines_is_not_called_open(
    tmp_path: Path, store: SQLiteStore, settings: EventSettings
) -> None:
    """A quoted item id holding a line break, closed on the next line, in a record one field
    short: the reason said "the quote opened on line 3 is not closed before line 4, or never",
    false of a quote the file closes. It says what was read: the lines, the widths."""
    path = tmp_path / "events.csv"
    path.write_text(
        f"{HEADER}\n{GOOD[0]}\n"
        'u2,"i2\nsecond line",view,2024-01-01T10:00:00Z\n'  # lines 3-4, closed, 4 fields
        f"{GOOD[4]}\n"
    )
    result = import_source(store, read_source("events", path), settings)
    assert result.accepted == 2 and result.rejected_count == 1
    (letter,) = store.dead_letters(limit=10)
    reason = letter.errors[0]["reason"]
    assert "not closed" not in reason, reason
    assert reason.startswith(
        "expected 5 fields, found 4 (lines 3 to 4 were read as this one record: "
        "a quoted field spans them;"
    ), reason


def test_line_numbers_after_a_csv_error(
    tmp_path: Path, store: SQLiteStore, settings: EventSettings
) -> None:
    """A record the csv module refuses (a field over its size limit, line 3) does not shift the
    lines named for the records after it; a one-line record of the wrong width names no lines."""
    path = tmp_path / "events.csv"
    path.write_text(
        f"{HEADER}\n{GOOD[0]}\n"
        f"u9,{'x' * 200_000},view,,2024-01-01T10:00:00Z\n"  # line 3: csv.Error
        "u1,i1,view,,2024-01-01T10:00:00Z,extra\n"  # line 4: one line, 6 fields
        'u2,"i2\n",view,2024-01-01T10:00:00Z\n'  # lines 5-6: 4 fields
        f"{GOOD[4]}\n"
    )
    result = import_source(store, read_source("events", path), settings)
    assert result.accepted == 2 and result.rejected_count == 3
    reasons = [
        d.errors[0]["reason"]
        for d in sorted(store.dead_letters(limit=10), key=lambda d: d.record_index)
    ]
    # the oracle: the file's line numbers, counted by hand (the header is line 1)
    assert reasons[0].startswith("not valid CSV: field larger than field limit")
    assert reasons[1] == "expected 5 fields, found 6"
    assert reasons[2].startswith(
        "expected 5 fields, found 4 (lines 5 to 6 were read as this one record:"
    ), reasons[2]


def test_reimport_counts_duplicates(
    tmp_path: Path, store: SQLiteStore, settings: EventSettings
) -> None:
    path = tmp_path / "e.csv"
    path.write_text("\n".join([HEADER, *GOOD]))
    assert import_source(store, read_source("events", path), settings).accepted == 5
    again = import_source(store, read_source("events", path), settings)
    assert (again.accepted, again.duplicates) == (0, 5)


def _roundtrip(store: SQLiteStore, settings: EventSettings, path: Path) -> pd.DataFrame:
    result = import_source(store, read_source("events", path), settings)
    assert result.rejected_count == 0, result.rejected
    return _events(store)


def test_leading_zero_ids_csv(tmp_path: Path, store: SQLiteStore, settings: EventSettings) -> None:
    path = tmp_path / "z.csv"
    path.write_text(
        "user_id,item_id,session_id,timestamp\n007,0739079891,0001,1704103200\n"
        "NA,00,null,1704103200\n"
    )
    events = _roundtrip(store, settings, path)
    assert sorted(events["item_id"]) == ["00", "0739079891"]
    assert set(events["user_id"]) == {"007", "NA"}  # "NA" is an id, not a missing value
    assert set(events["session_id"]) == {"0001", "null"}
    assert set(events["event_type"]) == {"view"}  # no event_type and no value column


def test_leading_zero_ids_jsonl_and_integer_ids(
    tmp_path: Path, store: SQLiteStore, settings: EventSettings
) -> None:
    path = tmp_path / "z.jsonl"
    records = [
        {"user_id": "007", "item_id": "0739079891", "timestamp": 1704103200, "value": 3},
        {
            "user_id": 42,
            "item_id": 1234567890123,
            "timestamp": "2024-01-01T00:00:00Z",
            "event_type": "view",
            "context": {"page": "home"},
        },
    ]
    path.write_text("\n".join(json.dumps(r) for r in records))
    events = _roundtrip(store, settings, path).set_index("user_id")
    assert events.loc["007", "item_id"] == "0739079891"
    assert events.loc["007", "event_type"] == "rating"  # value present, no type: a rating
    assert events.loc["42", "item_id"] == "1234567890123"  # integer ids become their text
    assert json.loads(events.loc["42", "context"]) == {"page": "home"}


def test_leading_zero_ids_parquet(
    tmp_path: Path, store: SQLiteStore, settings: EventSettings
) -> None:
    path = tmp_path / "z.parquet"
    table = pa.table(
        {
            "user_id": pa.array(["007", "008"]),
            "item_id": pa.array(["0739079891", "0000"]),
            "session_id": pa.array([17, None], pa.int64()),  # integer ids cast to text
            "event_type": pa.array(["click", "view"]),
            "timestamp": pa.array(
                [pd.Timestamp("2024-01-01 10:00:00.123456"), pd.Timestamp("2024-01-02")],
                pa.timestamp("us"),
            ),
        }
    )
    pq.write_table(table, path)
    source = read_source("events", path, chunk_rows=1)
    assert source.total_events == 2
    refused = import_source(store, read_source("events", path), settings)  # no zone: rejected
    assert refused.rejected_count == 2 and "no time zone" in refused.rejected[0].reason
    utc = settings.model_copy(update={"naive_timestamps": "utc"})
    events = _roundtrip(store, utc, path).set_index("user_id")
    assert events.loc["007", "item_id"] == "0739079891"
    assert events.loc["008", "item_id"] == "0000"
    assert events.loc["007", "session_id"] == "17"
    expected = pd.Timestamp("2024-01-01 10:00:00.123456", tz="UTC")  # naive read as UTC, as asked
    assert events.loc["007", "ts"] == expected.value // 1000


def test_float_and_bool_ids_are_refused(
    tmp_path: Path, store: SQLiteStore, settings: EventSettings
) -> None:
    path = tmp_path / "f.jsonl"
    path.write_text(
        '{"user_id": 1.0, "item_id": "a", "timestamp": 1704103200}\n'
        '{"user_id": "u", "item_id": true, "timestamp": 1704103200}\n'
    )
    result = import_source(store, read_source("events", path), settings)
    assert result.accepted == 0
    assert [r.errors[0].field for r in result.rejected] == ["user_id", "item_id"]


def test_malformed_json_line_is_dead_lettered(
    tmp_path: Path, store: SQLiteStore, settings: EventSettings
) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text(
        '{"user_id": "a", "item_id": "1", "timestamp": 1704103200}\n'
        '{"user_id": "a", "item_id": \n'
        "\n"
        "[1, 2]\n"
        '{"user_id": "b", "item_id": "2", "timestamp": 1704103200}\n'
        '{"user_id": "c", "item_id": "3", "timestamp": 1704103200, "evnt_type": "view"}\n'
    )
    result = import_source(store, read_source("events", path), settings)
    assert result.accepted == 2
    assert result.rejected_count == 3
    dead = {d.record_index: d for d in store.dead_letters()}
    assert set(dead) == {1, 2, 4}  # record positions: blank lines are not records
    assert dead[1].errors[0]["field"] == "record"
    assert dead[1].errors[0]["reason"].startswith("not valid JSON")
    assert dead[2].errors[0]["reason"] == "must be a JSON object"
    assert dead[4].errors[0] == {
        "field": "evnt_type",
        "reason": "unknown field (did you mean event_type?)",
    }
    assert {d.source for d in dead.values()} == {"m.jsonl"}


@pytest.mark.parametrize("sep", [";", "\t"])
def test_sniffs_semicolon_and_tab(
    tmp_path: Path, store: SQLiteStore, settings: EventSettings, sep: str
) -> None:
    path = tmp_path / "s.csv"
    path.write_text(
        sep.join(["user_id", "item_id", "value", "timestamp"])
        + "\n"
        + sep.join(["u", "0042", "3,5", "1704103200"])
        + "\n"
    )
    result = import_source(store, read_source("events", path), settings)
    # "3,5" is not a number; the point is that the columns split on the sniffed separator
    assert result.rejected_count == 1
    assert result.rejected[0].payload == {
        "user_id": "u",
        "item_id": "0042",
        "value": "3,5",
        "timestamp": "1704103200",
        "event_type": "rating",
    }
    assert [e.field for e in result.rejected[0].errors] == ["value"]


def test_gz_csv_and_jsonl(tmp_path: Path, store: SQLiteStore, settings: EventSettings) -> None:
    with gzip.open(tmp_path / "a.csv.gz", "wt") as fh:
        fh.write("user_id,item_id,value,timestamp\n001,01,4,1704103200\n")
    with gzip.open(tmp_path / "b.jsonl.gz", "wt") as fh:
        fh.write('{"user_id": "002", "item_id": "02", "timestamp": 1704103200}\n')
    a = read_source("events", tmp_path / "a.csv.gz")
    assert a.total_events == 1
    assert import_source(store, a, settings).accepted == 1
    assert (
        import_source(store, read_source("events", tmp_path / "b.jsonl.gz"), settings).accepted == 1
    )
    events = _events(store).set_index("user_id")
    assert events.loc["001", "event_type"] == "rating" and events.loc["001", "value"] == 4.0
    assert events.loc["002", "item_id"] == "02"


def test_rejections_kept_in_memory_are_capped(
    tmp_path: Path, store: SQLiteStore, settings: EventSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(base, "MAX_KEPT_REJECTIONS", 3)
    path = tmp_path / "bad.csv"
    path.write_text(HEADER + "\n" + "\n".join(f"u,i{n},view,,never" for n in range(10)) + "\n")
    result = import_source(store, read_source("events", path, chunk_rows=4), settings)
    assert len(result.rejected) == 3
    assert result.rejected_count == 10 == result.as_counts()["rejected"]
    assert len(store.dead_letters(limit=100)) == 10


def test_header_errors(tmp_path: Path) -> None:
    unknown = tmp_path / "u.csv"
    unknown.write_text("user_id,item_id,timestamp,rating\n")
    with pytest.raises(ValidationError, match="unknown column"):
        read_source("events", unknown)
    missing = tmp_path / "m.csv"
    missing.write_text("user_id,timestamp\n")
    with pytest.raises(ValidationError, match="item_id"):
        read_source("events", missing)
    other = tmp_path / "x.xlsx"
    other.write_text("")
    with pytest.raises(ValidationError, match="unsupported file type"):
        read_source("events", other)


def test_unknown_format_and_missing_path(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as info:
        read_source("excel", tmp_path)
    assert info.value.field == "format"
    with pytest.raises(SourceNotFound, match="no such file"):
        read_source("events", tmp_path / "nope.csv")
    with pytest.raises(FileNotFoundError):
        read_source("movielens", tmp_path / "nope")


def _dead(store: SQLiteStore) -> dict[int, tuple[str, str, dict[str, object]]]:
    """record index -> (field, reason, payload) of each dead letter."""
    return {
        d.record_index: (d.errors[0]["field"], d.errors[0]["reason"], d.payload)
        for d in store.dead_letters(limit=100)
    }


@pytest.mark.parametrize("filler", [0, 20_000])  # in the first read buffer, and far past it
def test_a_byte_that_is_not_utf8_refuses_its_record_naming_line_and_byte(
    tmp_path: Path, store: SQLiteStore, settings: EventSettings, filler: int
) -> None:
    header = b"user_id,item_id,timestamp\r\n"
    good = b"".join(b"u,x%d,1704103200\r\n" % i for i in range(filler))
    latin = "u,caf\u00e9,1704103201\r\n".encode("latin-1")  # line filler + 2, byte 0xe9 at 5
    spanning = b'u,"a\nb\xff",1704103202\r\n'  # one record over two lines: the second's byte 1
    path = tmp_path / "latin.csv"
    path.write_bytes(
        header + good + latin + b"u,ok1,1704103203\n" + spanning + b"u,ok2,1704103204\n"
    )
    result = import_source(store, read_source("events", path, chunk_rows=1_000), settings)
    assert (result.accepted, result.rejected_count) == (filler + 2, 2)
    kept = set(_events(store)["item_id"])
    assert {"ok1", "ok2"} <= kept and len(kept) == filler + 2  # nothing valid lost
    first, second = filler + 2, filler + 5  # the header is line 1
    assert _dead(store) == {
        filler: (
            "encoding",
            f"not UTF-8 text: byte 0xe9 at byte 5 of line {first}; re-save the file as UTF-8",
            {"fields": ["u", "caf\\xe9", "1704103201"]},
        ),
        filler + 2: (
            "encoding",
            f"not UTF-8 text: byte 0xff at byte 1 of line {second}; re-save the file as UTF-8",
            {"fields": ["u", "a\nb\\xff", "1704103202"]},
        ),
    }


@pytest.mark.parametrize(
    ("record", "where", "fields"),
    [
        pytest.param(  # a record over lines 2-4 whose FIRST line holds the byte (u , " a = 0..3)
            b'u,"a\xe9\nb\nc",1704103202\n',
            "byte 0xe9 at byte 4 of line 2",
            ["u", "a\\xe9\nb\nc", "1704103202"],
            id="first-line-of-multi-line-record",
        ),
        pytest.param(  # two 2-byte characters before it: byte 6, though character 4
            "u,\u00e9\u00e9".encode() + b"\xff,1704103202\n",
            "byte 0xff at byte 6 of line 2",
            ["u", "\u00e9\u00e9\\xff", "1704103202"],
            id="after-multi-byte-characters",
        ),
    ],
)
def test_the_bad_byte_is_placed_by_line_and_byte_offset(
    tmp_path: Path,
    store: SQLiteStore,
    settings: EventSettings,
    record: bytes,
    where: str,
    fields: list[str],
) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(b"user_id,item_id,timestamp\n" + record + b"u,ok,1704103203\n")
    result = import_source(store, read_source("events", path), settings)
    assert (result.accepted, result.rejected_count) == (1, 1)
    assert _dead(store) == {
        0: ("encoding", f"not UTF-8 text: {where}; re-save the file as UTF-8", {"fields": fields})
    }


def test_jsonl_and_item_lines_that_are_not_utf8_are_refused_alone(
    tmp_path: Path, store: SQLiteStore, settings: EventSettings
) -> None:
    event = b'{"user_id": "u1", "item_id": "%s", "event_type": "view", "timestamp": 1704103200}'
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join([event % b"i1", b"", b"  " + event % b"i\x80", event % b"i3"]))
    result = import_source(store, read_source("events", path), settings)
    assert (result.accepted, result.rejected_count) == (2, 1)
    assert sorted(_events(store)["item_id"]) == ["i1", "i3"]
    ((field, reason, payload),) = _dead(store).values()
    # line 3 (line 2 is blank): two leading spaces and 31 bytes of JSON come before the byte
    assert (field, reason) == (
        "encoding",
        "not UTF-8 text: byte 0x80 at byte 33 of line 3; re-save the file as UTF-8",
    )
    assert payload == {"line": (event % b"i\\x80").decode()}
    items = tmp_path / "items.csv"
    items.write_bytes(b"item_id,title\ni1,ok\ni2,caf\xe9\n")
    done = import_source(store, read_source("items", items), settings)
    assert (done.items.accepted, done.items_rejected_count) == (1, 1)


def test_a_header_that_is_not_utf8_still_refuses_the_file(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes(b"user_id,item_\xe9,timestamp\nu,i,1\n")
    with pytest.raises(ValidationError, match="byte 0xe9 at byte 13 of line 1") as info:
        read_source("events", path)
    assert info.value.field == "encoding"


@pytest.mark.parametrize("kind", ["events", "items"])
def test_jsonl_with_a_lone_surrogate_keeps_every_good_record(
    tmp_path: Path, store: SQLiteStore, settings: EventSettings, kind: str
) -> None:
    """``"\\ud800"`` is valid JSON in a valid UTF-8 file; framing the chunk used to raise
    UnicodeEncodeError (pandas' pyarrow strings), stopping the import at that chunk."""
    event = '"user_id": "u1", "event_type": "view", "timestamp": 1704103200'
    lines = {
        "events": [
            f'{{"item_id": "a", {event}}}',
            f'{{"item_id": "b\\ud800", {event}}}',
            f'{{"item_id": "c", {event}, "k\\udc00": 1}}',
            f'{{"item_id": "d", {event}}}',
        ],
        "items": [
            '{"item_id": "a"}',
            '{"item_id": "b", "categories": ["x\\ud800"]}',
            '{"item_id": "c", "k\\udc00": 1}',
            '{"item_id": "d"}',
        ],
    }[kind]
    path = tmp_path / "hostile.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = import_source(store, read_source(kind, path), settings)
    counts = result.as_counts()
    prefix = "" if kind == "events" else "items_"
    assert (counts[f"{prefix}accepted"], counts[f"{prefix}rejected"]) == (2, 2)
    items = [i.item_id for i in store.items()]
    stored = sorted(_events(store)["item_id"]) if kind == "events" else items
    assert stored == ["a", "d"]
    letters = sorted(store.dead_letters(), key=lambda d: d.record_index)
    assert [d.record_index for d in letters] == [1, 2]
    assert letters[0].errors[0]["reason"] == "not valid Unicode (lone surrogate)"
    assert letters[1].errors[0]["field"] in ("k\\udc00", "properties")
    json.dumps([d.payload for d in letters], ensure_ascii=False).encode("utf-8")  # storable


def test_a_blank_event_type_column_is_typed_as_a_file_without_the_column_would_be(
    tmp_path: Path, store: SQLiteStore, settings: EventSettings
) -> None:
    # an export that writes every optional column, empty where it has nothing (issue #15: every
    # row was refused "event_type: required"); a row with a value is a rating, one without a view
    path = tmp_path / "blank.csv"
    path.write_text(
        "user_id,item_id,timestamp,event_type,value,session_id\n"
        "u1,i1,1704103200,,,\n"
        "u1,i2,1704103201,  ,4,\n"
        "u2,i1,1704103202,,,\n"
        "u2,i2,1704103203,, ,\n"
    )
    events = _roundtrip(store, settings, path)
    typed = {(e.user_id, e.item_id): e.event_type for e in events.itertuples()}
    assert typed == {
        ("u1", "i1"): "view",
        ("u1", "i2"): "rating",
        ("u2", "i1"): "view",
        ("u2", "i2"): "view",  # a value of spaces is no value
    }
    # beside typed rows (dwell seconds, prices) a blank type is no rating: refused, named
    mixed = tmp_path / "mixed.csv"
    mixed.write_text(
        "user_id,item_id,timestamp,event_type,value\n"
        "u5,i1,1704103200,dwell,30\n"
        "u5,i2,1704103201,,4\n"
        "u5,i3,1704103202,purchase,12.5\n"
    )
    other = SQLiteStore(tmp_path / "mixed.sqlite")
    try:
        result = import_source(other, read_source("events", mixed), settings)
        kept = _events(other).set_index("item_id")["event_type"].to_dict()
    finally:
        other.close()
    assert kept == {"i1": "dwell", "i3": "purchase"}
    assert [e.field for r in result.rejected for e in r.errors] == ["event_type"]
    # no event_type column, a value column blank throughout: views, as without the column
    # (each row was refused "value: required"); one value in it: ratings, a blank one refused
    for name, cells, expected, refused in [
        ("no_values", ["", " "], {"i1": "view", "i2": "view"}, 0),
        ("one_value", ["4", ""], {"i1": "rating"}, 1),
    ]:
        path = tmp_path / f"{name}.csv"
        path.write_text(
            "user_id,item_id,timestamp,value\n"
            f"u6,i1,1704103200,{cells[0]}\nu6,i2,1704103201,{cells[1]}\n"
        )
        other = SQLiteStore(tmp_path / f"{name}.sqlite")
        try:
            result = import_source(other, read_source("events", path), settings)
            got = _events(other).set_index("item_id")["event_type"].to_dict()
        finally:
            other.close()
        assert (got, result.rejected_count) == (expected, refused), name


def test_the_blank_rules_are_decided_for_the_whole_file_not_a_chunk(
    tmp_path: Path, settings: EventSettings
) -> None:
    """Read two rows a chunk: a file whose first chunk has blank types and whose later rows are
    typed (dwell seconds) refuses the blanks, first chunk and last alike; a ratings file whose
    first or last chunk has blank values refuses those rows, not reads them as views; a JSONL record
    whose value is null is a view, as one without the key."""
    header = "user_id,item_id,timestamp,event_type,value\n"
    cases = {
        "typed_later.csv": header
        + "u1,i1,1704103200,,30\nu1,i2,1704103201,,40\n"
        + "u1,i3,1704103202,dwell,50\nu1,i4,1704103203,dwell,60\nu1,i5,1704103204,,4\n",
        "ratings_tail.csv": "user_id,item_id,timestamp,value\n"
        + "u2,i1,1704103200,4\nu2,i2,1704103201,5\nu2,i3,1704103202,\n",
        "values_later.csv": "user_id,item_id,timestamp,value\n"
        + "u4,i1,1704103200,\nu4,i2,1704103201,\nu4,i3,1704103202,4\n",
        "nulls.jsonl": '{"user_id": "u3", "item_id": "i1", "timestamp": 1704103200, '
        '"value": null}\n{"user_id": "u3", "item_id": "i2", "timestamp": 1704103201, "value": 3}\n',
    }
    expected = {
        "typed_later.csv": ({"i3": "dwell", "i4": "dwell"}, 3),
        "ratings_tail.csv": ({"i1": "rating", "i2": "rating"}, 1),
        "values_later.csv": ({"i3": "rating"}, 2),  # a ratings file: its blank rows refused
        "nulls.jsonl": ({"i1": "view", "i2": "rating"}, 0),
    }
    for name, text in cases.items():
        path = tmp_path / name
        path.write_text(text)
        store = SQLiteStore(tmp_path / f"{name}.sqlite")
        try:
            result = import_source(store, read_events(path, chunk_rows=2), settings)
            got = _events(store).set_index("item_id")["event_type"].to_dict()
        finally:
            store.close()
        assert (got, result.rejected_count) == expected[name], name
    jsonl = tmp_path / "blank.jsonl"
    jsonl.write_text(
        '{"user_id": "u3", "item_id": "i3", "timestamp": 1704103200, "event_type": null}\n'
        '{"user_id": "u3", "item_id": "i4", "timestamp": 1704103201, "event_type": "", '
        '"value": 2}\n'
    )
    fresh = SQLiteStore(tmp_path / "fresh.sqlite")
    try:
        got = _roundtrip(fresh, settings, jsonl).set_index("item_id")["event_type"].to_dict()
    finally:
        fresh.close()
    assert got == {"i3": "view", "i4": "rating"}
