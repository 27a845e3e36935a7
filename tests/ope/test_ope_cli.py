"""``recsmith ope estimate`` on real files: CSV and Parquet in, table and a JSON last line out,
warnings when the estimate is weak, and errors that name the column."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from recsmith.cli.app import app
from recsmith.ope import estimate

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["ope", "estimate", *args])
    return result.exit_code, result.stdout, result.stderr


def frames(rounds: int = 300, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    action = rng.integers(0, 4, rounds)
    log = pd.DataFrame(
        {
            "round": [f"{k:05d}" for k in range(rounds)],  # leading zeros: ids stay strings
            "action": [f"item{a}" for a in action],
            "reward": (rng.random(rounds) < 0.2 + 0.1 * action).astype(float),
            "propensity": 0.25,
            "x_age": rng.normal(size=rounds),
        }
    )
    target = pd.DataFrame(
        {
            "round": np.repeat(log["round"].to_numpy(), 2),
            "action": np.tile(["item3", "item2"], rounds),
            "probability": np.tile([0.7, 0.3], rounds),
        }
    )
    return log, target


def write(frame: pd.DataFrame, path: Path) -> str:
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return str(path)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_json_last_line_matches_the_library(tmp_path: Path, suffix: str) -> None:
    log, target = frames()
    code, out, err = run(
        "--log", write(log, tmp_path / f"log{suffix}"),
        "--target", write(target, tmp_path / f"target{suffix}"),
        "--estimators", "ips,snips,dr",
        "--clip", "3",
        "--bootstrap", "200",
        "--json",
    )  # fmt: skip
    assert code == 0, err
    assert "snips" in out and "effective sample size" in out  # the table
    payload = json.loads(out.strip().splitlines()[-1])
    expected = estimate(log, target, ("ips", "snips", "dr"), clip=3, bootstrap=200)
    assert payload["rounds"] == 300
    assert payload["ess"] == pytest.approx(expected.ess)
    assert set(payload) >= {"ips", "snips", "dr", "ess", "rounds"} and "dm" not in payload
    for name in ("ips", "snips", "dr"):
        assert payload[name]["value"] == pytest.approx(expected.values[name], abs=1e-12)
        lo, hi = payload[name]["ci"]
        assert lo <= payload[name]["value"] <= hi
    # truth: 0.7·0.5 + 0.3·0.4 = 0.47, inside DR's interval for this seed
    assert payload["dr"]["ci"][0] < 0.47 < payload["dr"]["ci"][1]


def test_support_deficiency_and_small_ess_are_warned(tmp_path: Path) -> None:
    log, target = frames()
    target.loc[target["action"] == "item2", "action"] = "never-shown"
    rare = np.flatnonzero(log["action"] == "item3")[:3]
    log.loc[rare, "propensity"] = 0.0005  # three weights of 1400 dominate: ESS about 3
    code, out, err = run(
        "--log", write(log, tmp_path / "log.csv"),
        "--target", write(target, tmp_path / "target.csv"),
        "--json",
    )  # fmt: skip
    assert code == 0, err
    payload = json.loads(out.strip().splitlines()[-1])
    assert payload["unsupported_mass"] == pytest.approx(0.3)
    assert "support deficiency" in err and "0.3 of its mass" in err
    assert "effective sample size" in err


def test_a_target_that_never_agrees_with_the_log_gives_valid_json(tmp_path: Path) -> None:
    log, target = frames(rounds=50)
    target = target.drop_duplicates("round").assign(action="elsewhere")  # Σw = 0
    target["x_0"] = 1.0  # a stray context column in the target is ignored
    code, out, err = run(
        "--log", write(log, tmp_path / "log.csv"),
        "--target", write(target, tmp_path / "target.csv"),
        "--json",
    )  # fmt: skip
    assert code == 0, err
    payload = json.loads(out.strip().splitlines()[-1])  # strict: NaN would not parse below
    json.loads(json.dumps(payload, allow_nan=False))
    assert payload["snips"]["value"] is None and payload["ips"]["value"] == 0.0
    assert payload["ess"] == 0.0 and payload["unsupported_mass"] == pytest.approx(0.7)
    assert "support deficiency" in err and "effective sample size 0.0" in err


def bad(tmp_path: Path, log: pd.DataFrame, target: pd.DataFrame) -> str:
    code, _, err = run(
        "--log", write(log, tmp_path / "log.csv"), "--target", write(target, tmp_path / "t.csv")
    )
    assert code == 2, err
    return " ".join(err.split())


def test_bad_input_names_the_column_and_the_reason(tmp_path: Path) -> None:
    log, target = frames(rounds=20)
    assert "log: propensity: missing column" in bad(
        tmp_path, log.drop(columns="propensity"), target
    )
    zero = log.assign(propensity=np.where(np.arange(20) == 7, 0.0, 0.25))
    assert "log: propensity: row 7 (round 00007)" in bad(tmp_path, zero, target)
    missing = log.assign(propensity=np.where(np.arange(20) == 4, np.nan, 0.25))
    assert "log: propensity: row 4" in bad(tmp_path, missing, target)
    assert "log: reward: row 2: 'yes' is not a number" in bad(
        tmp_path,
        log.assign(reward=log["reward"].astype(object).where(log.index != 2, "yes")),
        target,
    )
    over = target.assign(probability=np.where(target.index == 0, 0.9, target["probability"]))
    assert "target: probability: sums to 1.2 > 1 for round 00000" in bad(tmp_path, log, over)
    negative = target.assign(probability=np.where(target.index == 3, -0.1, target["probability"]))
    assert "target: probability: row 3" in bad(tmp_path, log, negative)
    assert "target: position: present in one file only" in bad(
        tmp_path, log.assign(position="1"), target
    )
    assert "log: round: row 2: 00001 logged twice" in bad(
        tmp_path, pd.concat([log.iloc[:2], log.iloc[1:]]), target
    )
    code, _, err = run("--log", str(tmp_path / "nope.csv"), "--target", str(tmp_path / "t.csv"))
    assert code == 2 and "--log: no such file" in err
    (tmp_path / "empty.csv").write_text("")
    code, _, err = run("--log", str(tmp_path / "empty.csv"), "--target", str(tmp_path / "t.csv"))
    assert code == 2 and "--log: cannot read empty.csv" in err
    files = (
        "--log",
        write(log, tmp_path / "ok.csv"),
        "--target",
        write(target, tmp_path / "okt.csv"),
    )
    code, _, err = run(*files, "--estimators", "ips,magic")
    assert code == 2 and "--estimators: unknown magic" in err
    code, _, err = run(*files, "--folds", "1")
    assert code == 2 and "--folds: cross-fitting needs at least 2 folds" in err
    code, _, err = run(*files, "--folds", "50")  # 20 rounds
    assert code == 2 and "--folds: 50 folds but only 20 rounds" in err
    code, _, err = run(*files, "--clip", "0")
    assert code == 2 and "--clip: must be > 0" in err
