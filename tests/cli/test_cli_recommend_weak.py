"""``recommend`` says how many known users the model found nothing for: their lists were
popularity fill alone, and the summary ("0 unknown users got popular items") read as a clean run.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recsmith.cli.app import app

pytestmark = pytest.mark.usefixtures("audit_store")

runner = CliRunner()

#: Only y and z share a user (c): item-kNN links them and nothing else. By hand: b (y) gets z
#: from the model and popularity's x below it; a (x, linked to nothing) and c (y and z, both
#: seen) get popularity alone; "new" is unknown. Rows: a 2, b 2, c 1 (only x is unseen), new 2.
EVENTS = """user_id,item_id,timestamp
a,x,1700000000
b,y,1700000001
c,y,1700000002
c,z,1700000003
"""


@pytest.fixture
def model(tmp_path: Path) -> Path:
    events = tmp_path / "events.csv"
    events.write_text(EVENTS)
    out = tmp_path / "model"
    args = ["-q", "train", "--data", str(events), "--model", "itemknn", "--out", str(out)]
    trained = runner.invoke(app, args)
    assert trained.exit_code == 0, trained.output
    return out


def _recommend(model: Path, tmp_path: Path, *extra: str, k: int = 2) -> tuple[int, str, str]:
    users = tmp_path / "users.txt"
    users.write_text("a\nb\nc\nnew\n")
    args = ["recommend", "--model-dir", str(model), "--users", str(users), "--k", str(k)]
    result = runner.invoke(app, [*args, "--no-log-decisions", *extra])
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(("k", "filled"), [(2, 1), (1, 0)])  # k=1: b's list is z alone
def test_json_counts_known_users_with_popular_items(
    model: Path, tmp_path: Path, k: int, filled: int
) -> None:
    code, out, _ = _recommend(model, tmp_path, "--json", "--out", str(tmp_path / "r.csv"), k=k)
    assert code == 0
    summary = json.loads(out)
    counts = ("fallback_users", "popular_only_users", "popular_filled_users")
    assert [summary[c] for c in counts] == [1, 2, filled]


def test_the_summary_line_says_so(model: Path, tmp_path: Path) -> None:
    code, _, err = _recommend(model, tmp_path, "--out", str(tmp_path / "r.csv"))
    assert code == 0
    assert " ".join(err.split()) == (
        f"wrote 7 rows for 4 users to {tmp_path / 'r.csv'} (1 unknown users got popular items; "
        "2 known users got only popular items: the model found nothing for them; 1 known user "
        "got popular items below the model's: it found too few for them; 1 user got fewer than 2 "
        "items: no more were left that they had not had, or the rules and re-ranking caps "
        "allowed no more)"  # c: only x is unseen
    )


def test_a_user_who_had_every_item_is_counted_short_not_as_popular_only(
    model: Path, tmp_path: Path
) -> None:
    """By hand (EVENTS and d, who had x, y and z: item-kNN now links all three): with k=3 a and b
    get 2 rows, c 1 (x), d none, all from the model, new 3 popular ones. d's empty list is not
    one "popularity answered only" (it answered nothing): the summary counts the four short
    lists and says why, and nobody as popular-only."""
    events = tmp_path / "events.csv"
    events.write_text(EVENTS + "d,x,1700000004\nd,y,1700000005\nd,z,1700000006\n")
    out = tmp_path / "model"
    args = ["-q", "train", "--data", str(events), "--model", "itemknn", "--out", str(out)]
    assert runner.invoke(app, args).exit_code == 0
    users = tmp_path / "users.txt"
    users.write_text("a\nb\nc\nd\nnew\n")
    recs = tmp_path / "r.csv"
    base = ["recommend", "--model-dir", str(out), "--users", str(users), "--k", "3"]
    result = runner.invoke(app, [*base, "--no-log-decisions", "--json", "--out", str(recs)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    counts = ("rows", "popular_only_users", "short_users")
    assert [summary[c] for c in counts] == [2 + 2 + 1 + 0 + 3, 0, 4]
    result = runner.invoke(app, [*base, "--no-log-decisions", "--out", str(recs)])
    assert " ".join(result.stderr.split()) == (
        f"wrote 8 rows for 5 users to {recs} (1 unknown users got popular items; 4 users got "
        "fewer than 3 items: no more were left that they had not had, or the rules and "
        "re-ranking caps allowed no more)"
    )


def test_a_popularity_model_is_not_reported_as_finding_nothing(tmp_path: Path) -> None:
    """``--model popular`` answers every known user with its own items, labelled as the fill's
    are ("popular"): the summary had said each "got only popular items: the model found nothing
    for them" — for the issue's own baseline, a whole file of false alarms. By hand (EVENTS):
    a, b, c known, new unknown; k=1: one row each (x for b and c, y for a)."""
    events = tmp_path / "events.csv"
    events.write_text(EVENTS)
    out = tmp_path / "model"
    args = ["-q", "train", "--data", str(events), "--model", "popular", "--out", str(out)]
    assert runner.invoke(app, args).exit_code == 0
    code, stdout, _ = _recommend(out, tmp_path, "--json", "--out", str(tmp_path / "r.csv"), k=1)
    assert code == 0
    summary = json.loads(stdout)
    counts = ("rows", "fallback_users", "popular_only_users", "popular_filled_users")
    assert [summary[c] for c in counts] == [4, 1, 0, 0]
