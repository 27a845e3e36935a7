"""``import --max-rejected N|P%`` and the rejection summary, on a file whose bad rows are known.

The file has 7 rows; rows 2, 3, 5, 6 and 7 (counted from 1) are each missing or garbling one
required field, so 5 of 7 are rejected: the oracle is that hand count, not the importer.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recsmith.cli.app import app
from recsmith.cli.reject_limit import RejectLimit
from recsmith.errors import ValidationError

runner = CliRunner()
ROWS = (
    "user_id,item_id,event_type,timestamp\n"
    "u1,i1,view,1700000000\n"
    "u2,,view,1700000000\n"
    "u3,i3,view,notatime\n"
    "u4,i4,view,1700000001\n"
    "u5,i5,,1700000000\n"
    "u6,i6,view,\n"
    ",i7,view,1700000000\n"
)
BAD_ROWS = {2, 3, 5, 6, 7}


@pytest.fixture
def events(tmp_path: Path) -> Path:
    path = tmp_path / "e.csv"
    path.write_text(ROWS)
    return path


def _import(events: Path, *extra: str) -> tuple[int, str, Path]:
    db = events.parent / "s.sqlite"
    result = runner.invoke(app, ["import", str(events), "--store", f"sqlite:///{db}", *extra])
    return result.exit_code, result.stderr, db


@pytest.mark.parametrize(
    ("limit", "code"),
    [(None, 0), ("5", 0), ("4", 3), ("0", 3), ("72%", 0), ("71%", 3), ("0%", 3)],
)
def test_max_rejected_fails_past_the_limit(events: Path, limit: str | None, code: int) -> None:
    exit_code, err, _ = _import(events, *(["--max-rejected", limit] if limit else []))
    assert exit_code == code, err
    if code == 3:
        assert f"error: --max-rejected: 5 of 7 records rejected (71.4%), more than {limit}" in err
    else:
        assert "error:" not in err


def test_the_summary_says_how_many_and_the_query_it_prints_reads_them(events: Path) -> None:
    code, err, db = _import(events)
    assert code == 0, err
    flat = " ".join(err.split())
    assert "rejected 5 of 7 records" in flat
    query = re.search(r"(SELECT .*? LIMIT \d+)", flat)
    assert query is not None, flat
    with sqlite3.connect(db) as conn:
        indexes = {index for _, index, _ in conn.execute(query.group(1))}
    assert {index + 1 for index in indexes} == BAD_ROWS  # "record_index counts from 0"


@pytest.mark.parametrize("bad", ["x", "-1", "101%", "nan%", "1.5"])
def test_a_bad_limit_is_a_usage_error_before_anything_is_imported(events: Path, bad: str) -> None:
    code, err, db = _import(events, "--max-rejected", bad)
    assert code == 2
    assert err.startswith("error: --max-rejected: ") and repr(bad) in err
    assert not db.exists()


@pytest.mark.parametrize(
    ("text", "rejected", "total", "exceeded"),
    [
        ("0", 0, 10, False),
        ("0", 1, 10, True),
        ("10%", 1, 10, False),  # exactly 10 %: not more than it
        ("10%", 2, 10, True),
        ("0%", 0, 0, False),  # nothing read, nothing rejected
        ("2.5%", 1, 40, False),
        ("2.5%", 2, 40, True),
    ],
)
def test_limit_arithmetic(text: str, rejected: int, total: int, exceeded: bool) -> None:
    assert RejectLimit.parse(text).exceeded(rejected, total) is exceeded


def test_limit_parse_refuses_what_it_cannot_read() -> None:
    with pytest.raises(ValidationError, match="--max-rejected"):
        RejectLimit.parse("ten")
