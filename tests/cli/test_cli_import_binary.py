"""``recsmith import`` of a file that is not text (an image, a database, random bytes renamed
``.csv``/``.jsonl``, a ``.gz`` that is not gzip) is refused in one line naming the file and the
reason, before anything is stored: never its bytes printed as column names, never a traceback.
The oracle is the bytes each case was built from (where the first NUL or control byte sits).
A text file with one bad record (a stray NUL, a raw control byte in a JSONL string) is no binary
file: that record alone is rejected, into the dead letters, and the others are stored."""

from __future__ import annotations

import gzip
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recsmith.cli.app import app

runner = CliRunner()
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10"
HEADER_WITH_CONTROLS = b"user_id,item_id\x01\x02,timestamp\nu1,i1,1700000000\n"


def _import(path: Path, *extra: str) -> tuple[int, str, Path]:
    db = path.parent / "s.sqlite"
    result = runner.invoke(app, ["import", str(path), "--store", f"sqlite:///{db}", *extra])
    return result.exit_code, result.stderr, db


def _stored(db: Path, table: str = "events") -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] if table in tables else 0


@pytest.mark.parametrize(
    ("name", "content", "where"),
    [
        ("image.csv", PNG, PNG.index(b"\x00")),
        ("zeros.jsonl", bytes(4096), 0),
        ("header.csv", HEADER_WITH_CONTROLS, HEADER_WITH_CONTROLS.index(b"\x01")),
        ("packed.csv.gz", gzip.compress(PNG), PNG.index(b"\x00")),
    ],
    ids=["image", "zeros", "header", "gzipped-image"],
)
@pytest.mark.parametrize("fmt", ["events", "items"])
def test_a_binary_file_is_one_line_naming_it(
    tmp_path: Path, name: str, content: bytes, where: int, fmt: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    code, err, db = _import(path, "--format", fmt)
    assert code == 2, err
    byte = (content if not name.endswith(".gz") else gzip.decompress(content))[where]
    assert err.splitlines() == [
        f"error: path: {name}: not a text file (control byte 0x{byte:02x} at byte {where}): "
        "expected CSV or JSONL text"
    ]
    assert _stored(db) == 0


def test_a_gz_that_is_not_gzip_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "events.csv.gz"
    path.write_bytes(b"user_id,item_id,timestamp\nu1,i1,1700000000\n")  # plain text, named .gz
    code, err, _ = _import(path)
    assert code == 2, err
    (line,) = err.splitlines()
    assert line.startswith("error: path: events.csv.gz: not a gzip file (")
    assert "Traceback" not in err


def test_utf16_text_still_asks_to_be_resaved_as_utf8(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes("user_id,item_id,timestamp\nu1,i1,1700000000\n".encode("utf-16"))
    code, err, _ = _import(path)
    assert code == 2 and "not UTF-8 text" in err and "re-save it as UTF-8" in err


def test_text_with_tabs_and_crlf_is_still_imported(tmp_path: Path) -> None:
    path = tmp_path / "events.tsv"
    path.write_bytes(b"user_id\titem_id\ttimestamp\r\nu1\ti1\t1700000000\r\n")
    code, err, db = _import(path)
    assert code == 0, err
    assert _stored(db) == 1


def _csv(n: int) -> bytes:
    return f"u{n},i{n},{1_700_000_000 + n}\n".encode()


def _jsonl(n: int) -> bytes:
    return f'{{"user_id":"u{n}","item_id":"i{n}","timestamp":{1_700_000_000 + n}}}\n'.encode()


@pytest.mark.parametrize(
    ("name", "content"),
    [
        (
            "nul_row.csv",
            b"user_id,item_id,timestamp\n" + _csv(1) + _csv(2).replace(b"i2", b"i\x002") + _csv(3),
        ),
        ("first_bad.jsonl", _jsonl(0).replace(b'"i0"', b'"i\x01x"') + _jsonl(1) + _jsonl(2)),
    ],
    ids=["nul-in-a-csv-record", "control-byte-in-the-first-jsonl-record"],
)
def test_one_bad_record_is_rejected_alone_not_the_whole_file(
    tmp_path: Path, name: str, content: bytes
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    code, err, db = _import(path)
    assert code == 0, err
    assert "1 rejected" in err and "not a text file" not in err
    assert (_stored(db), _stored(db, "dead_letters")) == (2, 1)


@pytest.mark.parametrize("name", ["empty.csv", "empty.jsonl"])
def test_an_empty_file_is_not_called_binary(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"")
    code, err, _ = _import(path)
    assert "not a text file" not in err and "Traceback" not in err, err
    assert code in (0, 2)
