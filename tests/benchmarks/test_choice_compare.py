"""``shape_sweep.save``'s files read back by ``choice_compare.compare``: what a later run of
another tree pairs with, user for user, worked out by hand."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import choice_compare
import shape_sweep

EASE = 'EASE {"regularization": 100.0}'
ALS = 'implicit ALS {"alpha": 10.0}'
STEM = "hidden-long-simulated-reviews-3"


def row(scores: dict[str, list[float]], best: str, users: tuple[str, ...]) -> shape_sweep.Row:
    arrays = {name: np.array(v) for name, v in scores.items()}
    people = shape_sweep.people_of("simulated-reviews", 3, list(users))
    usage = shape_sweep.Usage(10.0, 20.0, 30.0)
    calibration = {"grid": {"stopped": "half reached"}, "ranker": "not trained (not_better)"}
    return shape_sweep.Row(
        "hidden-long", "simulated-reviews", 3, "4 u", arrays, best, "calibration: x", usage,
        people, users, calibration,
    )  # fmt: skip


def cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip("|").split("|")]


def test_saved_full_and_pipeline_only_runs_pair_user_for_user(tmp_path: Path) -> None:
    users = ("a", "b", "c", "d")
    main = row(
        {"pipeline": [1, 0, 0.5, 0.5], "popular": [0, 0, 0.5, 0], EASE: [0.5, 0, 0.5, 0],
         ALS: [0, 0, 0, 0.25]},
        EASE, users,
    )  # fmt: skip
    facts = json.loads(shape_sweep.save(main, tmp_path / "main").read_text())
    assert facts["users"] == list(users)
    assert facts["best_peer"] == EASE
    assert facts["lists"][ALS] == f"{STEM}~implicit-ALS.npy"
    assert facts["train"] == {"wall_s": 10.0, "cpu_s": 20.0, "peak_mib": 30.0}
    assert (facts["stopped"], facts["ranker"]) == (
        ["grid: half reached"],
        "not trained (not_better)",
    )
    assert np.load(tmp_path / "main" / f"{STEM}.npy").tolist() == [1, 0, 0.5, 0.5]
    assert np.load(tmp_path / "main" / f"{STEM}~best-peer.npy").tolist() == [0.5, 0, 0.5, 0]
    branch = row({"pipeline": [1, 0.5, 0.5, 0.5]}, "", users)  # --pipeline-only: no peer
    shape_sweep.save(branch, tmp_path / "branch")
    assert not (tmp_path / "branch" / f"{STEM}~best-peer.npy").exists()

    # the branch's pipeline (mean 2.5 / 4) against main's (2 / 4): +0.125, ratio 1.25
    got = choice_compare.compare(tmp_path / "main", tmp_path / "branch", [STEM])
    name, n, base, new, diff, ratio = cells(got[2])
    assert (name, n, base, new) == (STEM, "4", "0.5000", "0.6250")
    assert diff.startswith("+0.1250 [") and ratio.startswith("1.250 [")
    low, high = (float(x) for x in diff.split("[")[1].rstrip("]").split(","))
    assert 0 <= low <= 0.125 <= high <= 0.5  # b's +0.5 is the only difference

    # main's pipeline against its own best tuned peer (mean 1 / 4): +0.25, ratio 2
    got = choice_compare.compare(tmp_path / "main", tmp_path / "main", [STEM], "best-peer")
    assert cells(got[2])[2:4] == ["0.2500", "0.5000"]
    assert cells(got[2])[5].startswith("2.000 [")
    # the other way round: the peer on the new side
    got = choice_compare.compare(tmp_path / "main", tmp_path / "main", [STEM], "", "best-peer")
    assert cells(got[2])[2:4] == ["0.5000", "0.2500"]


def test_runs_of_other_users_or_a_missing_side_are_not_paired(tmp_path: Path) -> None:
    shape_sweep.save(row({"pipeline": [1, 0]}, "", ("a", "b")), tmp_path / "one")
    shape_sweep.save(row({"pipeline": [1, 0]}, "", ("b", "a")), tmp_path / "other")
    got = choice_compare.compare(tmp_path / "one", tmp_path / "other", [STEM, "nowhere-1"])
    assert cells(got[2]) == [STEM, "users differ: not paired"]
    assert cells(got[3])[1].startswith("missing: ")
    assert len(got) == 4  # nothing compared: no pooled row


def test_pooled_row_weighs_each_user_once(tmp_path: Path) -> None:
    """Two samples, of 1 and 3 users; the new side +0.5 for the first sample's user and for one
    user of the second: pooled, +1 / 4 users = +0.25 (the mean of the two samples' differences
    would be (0.5 + 0.5 / 3) / 2 = 0.333)."""
    for side, first, second in (("base", [0.0], [0, 0, 0.5]), ("new", [0.5], [0.5, 0, 0.5])):
        for seed, scores in ((3, first), (4, second)):
            users = tuple("abc"[: len(scores)])
            r = row({"pipeline": scores}, "", users)
            shape_sweep.save(shape_sweep.Row(**{**r.__dict__, "seed": seed}), tmp_path / side)
    stems = [STEM, STEM[:-1] + "4"]
    got = choice_compare.compare(tmp_path / "base", tmp_path / "new", stems)
    assert len(got) == 5
    name, n, base, new, diff, _ = cells(got[4])
    assert (name, n, base, new) == ("pooled (2 samples)", "4", "0.1250", "0.3750")
    assert diff.startswith("+0.2500 [")
    assert choice_compare.row("x", np.ones(3), np.ones(3)).endswith("| identical | 1 |")


def test_labels_drop_settings_and_join_words_with_dashes() -> None:
    assert shape_sweep.label(ALS) == "implicit-ALS"
    assert shape_sweep.label("implicit item-kNN {}") == "implicit-item-kNN"
    assert shape_sweep.label("configured fusion (calibration off)") == (
        "configured-fusion-calibration-off"
    )
    assert shape_sweep.label("own ease") == "own-ease"
