"""``recommend --users``: the users file as other tools write it (a BOM, a CSV header with more
columns, ids holding commas, CRLF) names exactly the users listed, each id as written.

An outside scorer writes its test users with whatever it has: Excel and Windows tools put a
UTF-8 BOM before the first id, pandas quotes an id that holds a comma, and a test split saved
as CSV carries its other columns. Each case is checked against ids written by hand here, not
read back through recsmith's own reader."""

import csv
import json
from pathlib import Path

import pytest
from popular_model import popular_model
from typer.testing import CliRunner

from recsmith.cli.app import app
from recsmith.cli.users_file import read_users_file
from recsmith.errors import ValidationError
from recsmith.ids import IdMap

# ``recommend`` logs its lists into the default store when one exists: this one names none
pytestmark = pytest.mark.usefixtures("audit_store")

runner = CliRunner()


def _ids(path: Path, data: bytes) -> tuple[list[str], int]:
    path.write_bytes(data)
    listed = read_users_file(path)
    return list(listed.ids), listed.repeats


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        # a BOM is not part of the first id, with or without a header
        (b"\xef\xbb\xbfA2SUAM1J3GNN3B\nA1\n", ["A2SUAM1J3GNN3B", "A1"]),
        (b"\xef\xbb\xbfuser_id\r\nA2SUAM1J3GNN3B\r\n", ["A2SUAM1J3GNN3B"]),
        # one id per line: a comma is part of the id, leading zeros are kept
        (b"u,1\n0042\n", ["u,1", "0042"]),
        # a line written as one quoted CSV field (pandas' to_csv of such an id) is that id
        (b'"u,1"\n"say ""hi"""\n', ["u,1", 'say "hi"']),
        # a CSV header naming user_id: that column, quoted fields read as CSV
        (b'user_id\n"u,1"\n\xce\xa9mega\n', ["u,1", "Ωmega"]),
        (b"item_id,user_id,rating\n007,0042,5\n008,u9,4\n009,0042,3\n", ["0042", "u9"]),
        (b"user_id\tsplit\n0042\ttest\nu9\ttest\n", ["0042", "u9"]),
        # blank lines and surrounding spaces are not users
        (b"user_id\r\n\r\n  u1  \r\n\r\nu2\r\n", ["u1", "u2"]),
    ],
)
def test_users_file_names_exactly_the_users_written(
    tmp_path: Path, data: bytes, expected: list[str]
) -> None:
    ids, _ = _ids(tmp_path / "users.txt", data)
    assert ids == expected


def test_repeats_are_counted_after_the_bom_and_quotes_are_read(tmp_path: Path) -> None:
    """The first id behind a BOM and its plain repeat are one user, listed once."""
    ids, repeats = _ids(tmp_path / "users.txt", b'\xef\xbb\xbfu1\nu1\n"u1"\nu2\n')
    assert (ids, repeats) == (["u1", "u2"], 2)


def test_the_first_user_behind_a_bom_is_known_and_gets_no_seen_item(tmp_path: Path) -> None:
    """End to end: ``0042`` had the most popular item ``i1``; behind a BOM it was an unknown
    user ``\\ufeff0042`` whose popularity list led with ``i1`` and whose id did not round-trip."""
    events = "user_id,item_id,timestamp\n0042,i1,1700000000\nu2,i1,1700000001\nu2,i2,1700000002\n"
    args = popular_model(runner, tmp_path, events, "0042")
    users = Path(args[-1])
    users.write_bytes(b"\xef\xbb\xbfuser_id\r\n0042\r\n")
    out = tmp_path / "recs.csv"
    result = runner.invoke(app, [*args, "--k", "5", "--out", str(out)])
    assert result.exit_code == 0, result.output
    with out.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["user_id"], r["item_id"]) for r in rows] == [("0042", "i2")]


def test_a_file_answered_in_slices_writes_what_one_call_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Users are answered ``SLICE`` at a time so a large file does not hold every user's
    candidates at once; the file must not change: slices of one user (every seam a boundary,
    the last slice short) against one call, rows and summary byte for byte."""
    # item i<j> had users u0 … u<j-1>: popularity j, and u<m> has not had i1 … i<m> (by hand,
    # k=4: u0 no row, nobody 4, u3 3, u1 1, u7 4, u2 2), so lists differ in length and scores
    events = "user_id,item_id,timestamp\n" + "".join(
        f"u{m},i{j},{1_700_000_000 + 10 * j + m}\n" for j in range(1, 9) for m in range(j)
    )
    args = popular_model(runner, tmp_path, events, "u0", "nobody", "u3", "u1", "u7", "u2")

    def written(slice_users: int) -> tuple[str, str]:
        monkeypatch.setattr("recsmith.cli.recommend.SLICE", slice_users)
        out = tmp_path / f"recs-{slice_users}.csv"
        result = runner.invoke(app, [*args, "--k", "4", "--out", str(out), "--json"])
        assert result.exit_code == 0, result.output
        return out.read_text(encoding="utf-8"), result.stdout

    whole, whole_summary = written(100)
    assert written(1) == (whole, whole_summary)
    assert written(4) == (whole, whole_summary)  # a full slice, then a short one
    assert whole.count("\n") == 1 + 0 + 4 + 3 + 1 + 4 + 2


def test_headerless_csv_rows_are_read_by_their_first_field_for_the_whole_file(
    tmp_path: Path,
) -> None:
    """A test split saved without its header (``user,item,rating`` rows) as ``--users``: read
    whole, each row was an unknown user answered by popularity, its seen items listed. More
    first fields than whole lines are known users (3 against 1), so every line is a row: the
    new user ``ghost`` is one user under its own id, not a user named ``ghost,i2,1`` (decided
    for the file, not line by line), and a quoted ``"u,1"`` is one field, the known user
    ``u,1``, though ``u`` is a user too. By hand: ``0042`` had ``i1``, ``u,1`` had ``i1`` and
    ``i2``; popularity ``i1`` (2) > ``i2`` (1) > ``i3`` (1, later)."""
    events = (
        "user_id,item_id,timestamp\n0042,i1,1700000000\n"
        '"u,1",i1,1700000001\n"u,1",i2,1700000002\nu,i3,1700000003\n'
    )
    args = popular_model(runner, tmp_path, events)
    Path(args[-1]).write_text('0042,i2,5\n"u,1"\n0042,i3,4\nghost,i2,1\nghost,i3,2\n')
    out = tmp_path / "recs.csv"
    result = runner.invoke(app, [*args, "--k", "2", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    with out.open(newline="", encoding="utf-8") as fh:
        rows = [(r["user_id"], r["item_id"]) for r in csv.DictReader(fh)]
    assert rows == [
        ("0042", "i2"),
        ("0042", "i3"),
        ("u,1", "i3"),
        ("ghost", "i1"),
        ("ghost", "i2"),
    ]
    summary = json.loads(result.stdout)
    assert (summary["lines_read_as_rows"], summary["duplicate_users"]) == (5, 2)
    assert summary["fallback_users"] == 1


KNOWN = IdMap(["u1", "u2", "u", "u,9"])


@pytest.mark.parametrize(
    ("data", "expected", "rows"),
    [
        # tab-separated rows without a header: the first field, for every line
        (b"u1\ti9\t4\nnew7\ti3\t5\nnew7\ti4\t2\n", ["u1", "new7"], True),
        # a known id holding a comma beats its split: whole lines (2 known against 1)
        (b"u,9\nu2\n", ["u,9", "u2"], False),
        # a user column's values are exact: never split again, known prefix or not
        (b'user_id,rating\n"u,9",4\n"u,7",5\n', ["u,9", "u,7"], False),
        # a header of one user column: each line whole, as without a header
        (b"user_id\nu,1\n", ["u,1"], False),
        # MovieLens' and Amazon's own headers, and a header after a blank line
        (b"userId,movieId,rating\nu1,i1,4\n", ["u1"], False),
        (b"asin;reviewerID\ni1;u2\n", ["u2"], False),
        (b"\n\nuser_id,x\nu2,1\n", ["u2"], False),
    ],
)
def test_each_file_is_read_one_way(
    tmp_path: Path, data: bytes, expected: list[str], rows: bool
) -> None:
    path = tmp_path / "users.txt"
    path.write_bytes(data)
    listed = read_users_file(path, KNOWN)
    assert (list(listed.ids), listed.rows) == (expected, rows)


def test_a_stray_quote_is_refused_naming_its_line(tmp_path: Path) -> None:
    """A lenient CSV reader lets an unclosed quote run on: three users read as one id."""
    path = tmp_path / "users.txt"
    path.write_bytes(b'user_id,n\nu0,1\n"u1,1\nu2,1\nu3,1\n')
    with pytest.raises(ValidationError, match=r"--users.*line 3 is not CSV"):
        read_users_file(path, KNOWN)
