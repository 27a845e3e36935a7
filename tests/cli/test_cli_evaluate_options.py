"""``recsmith evaluate`` with a bad option: the error names the option as typed (``--split``,
not the library's field ``split``) and the reason, exits 2 and writes nothing, before any model
is fitted."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recsmith.cli.app import app

pytestmark = pytest.mark.usefixtures("audit_store")

runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (
            ["--split", "bogus"],
            "--split: unknown split 'bogus'; expected 'temporal[:QUANTILE]', "
            "'leave-last-out[:N]', 'random[:FRACTION]' or 'user-holdout[:FRACTION]'",
        ),
        (["--split", "temporal:2"], "--split: quantile must be in (0, 1), got 2.0"),
        (["--split", "random:x"], "--split: random fraction 'x' is not a number"),
        (["--split", "temporal:"], "--split: missing value after ':' in 'temporal:'"),
        (
            ["--split", "leave-last-out:0"],
            "--split: leave-last-out count must be an integer >= 1, got 0",
        ),
        (["--models", "popular,nosuch"], "--models: unknown model 'nosuch' (known: bpr, "),
        (["--param", "foo"], "--param: expected key=value, got 'foo'"),
        (
            ["--param", "popular.x=1"],
            "--param: popular.x: unknown parameter (valid: half_life_days)",
        ),
        (
            ["--param", "popular.=1"],
            "--param: 'popular.': no KEY after the dot (expected MODEL.KEY=VALUE)",
        ),
        (
            ["--param", "popular.half_life_days=abc"],
            "--param: popular.half_life_days: Input should be a valid number",
        ),
        (["--json", "{tmp}/missing/x.json"], "--json: no such directory: {tmp}/missing"),
        (["--report", "{tmp}"], "--report: {tmp} is a directory, not a file"),
        (["--json", "{tmp}"], "--json: {tmp} is a directory, not a file"),
        (
            ["--decisions", "--pipeline", ".", "--ope", "ips,zz"],
            "--ope: unknown zz: choose from ips, snips, dm, dr, switch-dr",
        ),
    ],
)
def test_a_bad_option_is_named_as_typed(
    events_csv: Path, tmp_path: Path, args: list[str], says: str
) -> None:
    args = [a.format(tmp=tmp_path) for a in args]
    says = says.format(tmp=tmp_path)
    result = runner.invoke(
        app, ["evaluate", "--data", str(events_csv), "--models", "popular", *args]
    )
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: {says}"), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""  # refused before any model was fitted or any table printed
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_a_report_into_a_new_folder_makes_the_folder(events_csv: Path, tmp_path: Path) -> None:
    """``--report`` writes into a folder that does not exist yet, as it always has (the report
    writer makes it); only a path that is itself a folder is refused up front."""
    target = tmp_path / "new" / "deeper" / "r.html"
    result = runner.invoke(
        app, ["evaluate", "--data", str(events_csv), "--models", "popular", "--report", str(target)]
    )
    assert result.exit_code == 0, result.output
    assert target.read_text().lstrip().lower().startswith("<!doctype html")


def test_tune_names_its_split_option_too(events_csv: Path) -> None:
    result = runner.invoke(
        app, ["tune", "--model", "ials", "--data", str(events_csv), "--split", "random:1"]
    )
    assert result.exit_code == 2, result.output
    assert result.stderr == "error: --split: fraction must be in (0, 1), got 1.0\n"


def test_a_split_that_leaves_no_test_user_a_past_is_named_as_typed(tmp_path: Path) -> None:
    """Five events where the temporal split's test part holds only a user with nothing before
    it: a one-line refusal naming ``--split`` (was a traceback of a bare ValueError)."""
    data = tmp_path / "ev.csv"
    data.write_text(
        "user_id,item_id,timestamp\n"
        "u1,i1,2024-01-01T00:00:00Z\nu1,i2,2024-01-02T00:00:00Z\nu2,i1,2024-01-03T00:00:00Z\n"
        "u2,i3,2024-01-04T00:00:00Z\nu3,i2,2024-01-05T00:00:00Z\n"
    )
    result = runner.invoke(app, ["evaluate", "--data", str(data), "--models", "popular"])
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        "error: --split: no test user has history in the training part: nothing to evaluate; "
        "--split leave-last-out evaluates every user with two or more events\n"
    )
    # the split it names does evaluate: u1 and u2 have two events each
    again = ["evaluate", "--data", str(data), "--models", "popular", "--split", "leave-last-out"]
    assert runner.invoke(app, again).exit_code == 0


def test_a_leave_last_out_of_single_event_users_says_why(tmp_path: Path) -> None:
    data = tmp_path / "ev.csv"
    data.write_text("user_id,item_id,timestamp\nu1,i1,1700000000\nu2,i2,1700000001\n")
    args = ["evaluate", "--data", str(data), "--models", "popular", "--split", "leave-last-out"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        "error: --split: no test user has history in the training part: nothing to evaluate "
        "(no user has two or more events)\n"
    )


@pytest.mark.parametrize("split", ["temporal:0.9", "random:0.5", "leave-last-out"])
def test_a_split_that_leaves_nothing_to_train_on_is_named_as_typed(
    tmp_path: Path, split: str
) -> None:
    """One event: every split leaves its training part empty, a one-line refusal naming
    ``--split`` (was a traceback of the interaction matrix's bare ValueError)."""
    data = tmp_path / "ev.csv"
    data.write_text("user_id,item_id,timestamp\nu1,i1,2024-01-01T00:00:00Z\n")
    result = runner.invoke(
        app, ["evaluate", "--data", str(data), "--models", "popular", "--split", split]
    )
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: --split: "), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_measure_no_user_defines_is_nan_without_a_warning(tmp_path: Path) -> None:
    """Two evaluated users, each list one item long (k 1): intra-list diversity has no pair in
    any list, so it is undefined: null in --json (was NaN, not JSON), and numpy's "Mean of
    empty slice" warning no longer reaches the output. Novelty is defined: -log2(the item's
    training users / 3 users), by hand."""
    data = tmp_path / "ev.csv"
    data.write_text(
        "user_id,item_id,timestamp\n"
        "u1,i1,2024-01-01T00:00:00Z\nu1,i2,2024-01-02T00:00:00Z\nu2,i1,2024-01-03T00:00:00Z\n"
        "u2,i3,2024-01-04T00:00:00Z\nu3,i2,2024-01-05T00:00:00Z\n"
    )
    out = tmp_path / "r.json"
    args = ["evaluate", "--data", str(data), "--models", "popular", "--split", "leave-last-out"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        result = runner.invoke(app, [*args, "--k", "1", "--json", str(out)])
    assert result.exit_code == 0, result.output
    # strict JSON (NaN is not JSON): what jq or JSON.parse reads
    beyond = json.loads(out.read_text(), parse_constant=_refuse)["results"][0]["beyond"]
    assert beyond["diversity"] is None
    # train: u1 {i1}, u2 {i1}, u3 {i2}; popular's top unseen item: i2 for u1 and u2 (1 user of 3)
    assert beyond["novelty"] == pytest.approx(math.log2(3))


def _refuse(name: str) -> None:
    raise AssertionError(f"{name} is not JSON")
