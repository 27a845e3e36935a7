"""``recsmith ope replay``: a candidate model replayed over a decision log whose served policy
explored uniformly (propensity 1/4 per list of one), with clicks drawn from a known truth. The
IPS and SNIPS values are checked against the formulas computed here from the log and the
candidate's own lists (not through the replay), IPS against the truth within 4 standard errors,
and the CLI's JSON against both."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from recsmith.bundle import ModelBundle
from recsmith.cli.app import app
from recsmith.config import EventSettings
from recsmith.decisions.outcomes import shown_and_attributed
from recsmith.decisions.record import decision
from recsmith.features.interactions import Interactions
from recsmith.models.registry import create
from recsmith.ope.replay import replay, replay_target, served_candidate
from recsmith.store.sqlite import SQLiteStore
from recsmith.testing.recommender import checkerboard_events

ROUNDS = 3000
GOOD, BAD = 0.3, 0.1  # click chance of the candidate's item, of any other


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("replay")
    data = Interactions.from_events(checkerboard_events(60), EventSettings().weights)
    bundle = ModelBundle.train(data, create("itemknn"))
    bundle.save(tmp / "candidate")
    users = np.array([f"u{u:03d}" for u in range(60)], dtype=object)
    top = {
        u: str(row[0]) for u, row in zip(users, bundle.recommend(users, 1).item_ids, strict=True)
    }
    others = [f"i{i:03d}" for i in range(40)]
    rng = np.random.default_rng(7)
    store = SQLiteStore(tmp / "s.sqlite")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows, decisions = [], []
    for r in range(ROUNDS):
        unit = str(users[rng.integers(len(users))])
        choices = [top[unit], *rng.choice([o for o in others if o != top[unit]], 3, replace=False)]
        shown = choices[rng.integers(4)]  # uniform over 4: propensity 1/4
        clicked = rng.random() < (GOOD if shown == top[unit] else BAD)
        rid = f"r{r:05d}"
        decisions.append(
            decision(
                rid,
                unit=unit,
                unit_kind="user",
                route="recommendations",
                release="v1",
                item_ids=[shown],
                scores=[1.0],
                sources=[("explore",)],
                served_at=start + timedelta(seconds=r),
                propensities=[0.25],
            )
        )
        rows.append((unit, shown, shown == top[unit], float(clicked)))
        if clicked:
            ts = int((start + timedelta(seconds=r, milliseconds=500)).timestamp() * 1e6)
            store.append_attributions(
                pd.DataFrame(
                    {
                        "event_id": [f"c{r}"],
                        "recommendation_id": [rid],
                        "position": [1],
                        "rule": ["explicit"],
                        "event_type": ["click"],
                        "value": [np.nan],
                        "ts": [ts],
                    }
                )
            )
    store.append_decisions(decisions)
    log = pd.DataFrame(rows, columns=["unit", "item", "candidate", "reward"])
    yield store, bundle, log, tmp
    store.close()


def test_replay_equals_the_estimators_by_hand_and_recovers_the_truth(logged) -> None:  # type: ignore[no-untyped-def]
    store, bundle, log, _ = logged
    shown, attributed = shown_and_attributed(store, None, None, {"click": "click"})
    found = replay(shown, attributed, served_candidate(bundle), "click", ("ips", "snips"))
    weight = log["candidate"].to_numpy() / 0.25  # the candidate shows its item with prob. 1
    reward = log["reward"].to_numpy()
    ips = float(np.mean(weight * reward))
    assert found.report.values["ips"] == pytest.approx(ips, abs=1e-12)
    assert found.report.values["snips"] == pytest.approx(
        float((weight * reward).sum() / weight.sum()), abs=1e-12
    )
    se = float(np.std(weight * reward) / math.sqrt(ROUNDS))
    assert abs(ips - GOOD) < 4 * se
    assert found.observed == pytest.approx(reward.mean())  # the served policy's own CTR
    assert abs(found.observed - (GOOD + 3 * BAD) / 4) < 4 * math.sqrt(0.15 * 0.85 / ROUNDS)
    assert found.lists == ROUNDS


def replay_cli(tmp: Path, since: str, *more: str):  # type: ignore[no-untyped-def]
    """``recsmith ope replay`` on the fixture's candidate and store."""
    store = f"sqlite:///{tmp / 's.sqlite'}"
    args = ["--pipeline", str(tmp / "candidate"), "--since", since, "--store", store, *more]
    return CliRunner().invoke(app, ["ope", "replay", *args])


def test_the_cli_prints_the_same_numbers_as_json(logged) -> None:  # type: ignore[no-untyped-def]
    _, _, log, tmp = logged
    result = replay_cli(
        tmp, "2025-12-31", "--estimators", "ips,snips", "--bootstrap", "200", "--json"
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    weight = log["candidate"].to_numpy() / 0.25
    assert out["ips"]["value"] == pytest.approx(float(np.mean(weight * log["reward"])), abs=1e-12)
    assert out["lists"] == ROUNDS and out["observed"] == pytest.approx(log["reward"].mean())
    lo, hi = out["ips"]["ci"]
    assert lo < out["ips"]["value"] < hi


def test_a_window_without_lists_is_an_error_naming_since(logged) -> None:  # type: ignore[no-untyped-def]
    _, _, _, tmp = logged
    result = replay_cli(tmp, "2030-01-01")
    assert result.exit_code != 0 and "--since" in result.output


def test_each_round_gets_the_candidates_list_cut_to_its_own_length() -> None:
    shown = pd.DataFrame(
        {
            "recommendation_id": ["r1", "r2", "r2", "r3"],
            "unit": ["u1", "u1", "u1", None],  # r3: no unit (an item-to-item list): left out
            "item_id": ["x", "y", "z", "w"],
        }
    )
    asked: list[tuple[list[str], int]] = []

    def candidate(units: np.ndarray, k: int) -> list[list[str]]:
        asked.append((units.tolist(), k))
        return [["a", "b", "c"]]

    target = replay_target(shown, candidate)
    assert asked == [(["u1"], 2)]  # once per unit, as long as its longest list
    assert sorted(map(tuple, target[["round", "position", "action"]].to_numpy().tolist())) == [
        ("r1", "1", "a"),
        ("r2", "1", "a"),
        ("r2", "2", "b"),
    ]
    assert (target["probability"] == 1.0).all()


def test_evaluate_decisions_is_the_same_replay(logged) -> None:  # type: ignore[no-untyped-def]
    """The issue's spelling, ``evaluate --ope … --decisions --pipeline DIR``, prints the IPS value
    computed by hand from the log, as ``ope replay`` does."""
    _, _, log, tmp = logged
    store = f"sqlite:///{tmp / 's.sqlite'}"
    args = ["--decisions", "--ope", "ips", "--pipeline", str(tmp / "candidate")]
    result = CliRunner().invoke(app, ["evaluate", *args, "--since", "2025-12-31", "--store", store])
    assert result.exit_code == 0, result.output
    weight = log["candidate"].to_numpy() / 0.25
    ips = float(np.mean(weight * log["reward"]))
    assert re.search(rf"\bips\W+{re.escape(f'{ips:.5g}')}\s", result.output), result.output
    toml = tmp / "pipeline.toml"
    toml.write_text("")
    result = CliRunner().invoke(app, ["evaluate", "--decisions", "--pipeline", str(toml)])
    assert result.exit_code != 0 and "--pipeline" in result.output
