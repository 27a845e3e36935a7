"""The plain verdict and the too-few-users warning, from hand-built per-user metrics (#12)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy import sparse, stats
from typer.testing import CliRunner

from recsmith.cli.app import app
from recsmith.evaluation.runner import GroundTruth, ModelResult, compare_to_best, score_lists
from recsmith.evaluation.verdict import judge
from recsmith.testing.views import views


def result(model: str, ndcg: np.ndarray) -> ModelResult:
    return ModelResult(
        model=model,
        params={},
        metrics={"ndcg": float(ndcg.mean())},
        per_user={"ndcg": ndcg},
        coverage=0.0,
        fit_seconds=0.0,
        recommend_seconds=0.0,
    )


def test_four_users_cannot_separate_two_models() -> None:
    # diffs [0.3, -0.1, 0.1, 0.1]: mean 0.1, sd 0.163299, t = 0.1 / (0.163299 / 2) = 1.224745
    # on 3 df -> p = 0.3081 (one comparison: Holm leaves it); 21 users needed (see
    # test_significance.test_paired_sample_size_by_hand)
    p = 2 * stats.t.sf(1.224745, 3)
    assert round(p, 2) == 0.31
    ease = np.full(4, 0.5)
    ials = ease - np.array([0.3, -0.1, 0.1, 0.1])
    comparisons = compare_to_best([result("ials", ials), result("ease", ease)])
    verdict = judge(comparisons, evaluated_users=4, users_in_data=610, split="temporal:0.9", k=10)
    assert verdict.text == (
        "no model is significantly better than ials at p < 0.05 "
        "(ease leads on ndcg@10 by +0.1000, p_holm = 0.31)"
    )
    assert verdict.users_needed == 21 and verdict.suggested_split == "leave-last-out"
    assert verdict.warning == (
        "only 4 of 610 users were evaluated: too few to separate the models. Telling ease from "
        "ials apart (Δ ndcg@10 +0.1000) at p < 0.05 with 80% power needs about 21 users. "
        "--split leave-last-out evaluates more: every user with two or more events."
    )


def test_one_model_beaten_and_one_not_and_the_data_too_small() -> None:
    # vs popular: diffs 0.2, 0.3 alternating (40 users): t = 0.25 / (0.050637 / sqrt 40) = 31.2,
    # p ~ 1e-30. vs ials: diffs 0.6, -0.4 alternating: mean 0.1, sd 0.5 sqrt(40/39) = 0.506370,
    # t = 0.1 / (0.506370 / sqrt 40) = 1.249, p = 0.219 (Holm: the larger of two keeps its p);
    # users needed (2.801585 * 5.06370)^2 = 201.26 -> 202, more than the 100 in the data.
    p_ials = 2 * stats.t.sf(0.1 / (0.5 * np.sqrt(40 / 39) / np.sqrt(40)), 39)
    assert round(p_ials, 2) == 0.22
    best = np.full(40, 0.7)
    popular = best - np.tile([0.2, 0.3], 20)
    ials = best - np.tile([0.6, -0.4], 20)
    comparisons = compare_to_best(
        [result("popular", popular), result("ease", best), result("ials", ials)]
    )
    verdict = judge(
        comparisons, evaluated_users=40, users_in_data=100, split="leave-last-out:1", k=10
    )
    assert verdict.text.startswith("ease is better than popular (p_holm = ")
    assert verdict.text.endswith(" at p < 0.05; not significantly better than ials (p_holm = 0.22)")
    assert verdict.users_needed == 202 and verdict.suggested_split is None
    assert verdict.warning is not None
    assert "needs about 202 users, more than the 100 in the data." in (verdict.warning)
    assert "--split" not in verdict.warning  # leave-last-out already evaluates every user
    everyone = judge(
        comparisons, evaluated_users=100, users_in_data=100, split="leave-last-out:1", k=10
    )
    assert everyone.warning is not None
    assert everyone.warning.startswith("all 100 users were evaluated, still too few to separate")


def test_a_clear_winner_gets_no_warning() -> None:
    best = np.full(40, 0.7)
    comparisons = compare_to_best(
        [result("ease", best), result("popular", best - np.tile([0.2, 0.3], 20))]
    )
    verdict = judge(comparisons, evaluated_users=40, users_in_data=40, split="temporal", k=5)
    assert verdict.warning is None and verdict.users_needed is None
    assert verdict.text.startswith("ease is better than popular (p_holm = ")


def test_one_model_has_nothing_to_compare() -> None:
    verdict = judge([], evaluated_users=3, users_in_data=3, split="temporal", k=10)
    assert verdict.text == "one model evaluated: nothing to compare" and verdict.warning is None


def test_one_evaluated_user_compares_nothing_and_says_why() -> None:
    # one user (data with a single user): the paired test's ValueError was a traceback out of
    # ``recsmith evaluate`` (odd_shapes.py's evaluate_single_user, BENCHMARKS §179)
    comparisons = compare_to_best(
        [result("ease", np.array([0.5])), result("popular", np.array([0.25]))]
    )
    assert comparisons == []
    verdict = judge(comparisons, evaluated_users=1, users_in_data=5, split="temporal", k=10)
    assert verdict.text == "1 user evaluated: a paired test needs two or more, nothing compared"
    assert verdict.warning == "--split leave-last-out evaluates every user with two or more events"
    # data with one user: no split evaluates more, so none is suggested (review rv29o)
    alone = judge(comparisons, evaluated_users=1, users_in_data=1, split="temporal", k=10)
    assert alone.warning is None
    none = judge([], evaluated_users=0, users_in_data=3, split="leave-last-out", k=10)
    assert none.text == "0 users evaluated: a paired test needs two or more, nothing compared"


def test_a_tie_names_no_leader() -> None:
    # the same per-user ndcg for both models: mean difference 0, nothing to lead by (was
    # "popular leads on ndcg@10 by +0.0000"); identical samples: p = 1
    same = np.array([0.0, 1.0, 0.5])
    comparisons = compare_to_best([result("popular", same), result("itemknn", same.copy())])
    verdict = judge(comparisons, evaluated_users=3, users_in_data=3, split="leave-last-out", k=10)
    assert verdict.text == (
        "no model is significantly better than itemknn at p < 0.05 "
        "(popular and itemknn tie on ndcg@10, p_holm = 1)"
    )


def _digested(model: str, ndcg: np.ndarray, lists: str) -> ModelResult:
    return replace(result(model, ndcg), lists_digest=lists)


def test_a_tie_on_every_user_is_warned_of_with_what_it_bounds() -> None:
    """Every paired difference 0: no p-value or user count can be computed, which left the
    too-few-users warning silent. Identical lists and equal scores are told apart; with 4
    users, the rule of three bounds the share of users on whom they differ by 3/4 = 75 %."""
    same = np.array([0.0, 1.0, 0.5, 0.0])
    comparisons = compare_to_best(
        [
            _digested("ease", same, "L1"),
            _digested("itemknn", same.copy(), "L1"),
            _digested("popular", same.copy(), "L2"),
        ]
    )
    verdict = judge(comparisons, evaluated_users=4, users_in_data=10, split="temporal", k=10)
    assert verdict.warning == (
        "ease and itemknn gave identical lists on all 4 users; ease and popular score exactly "
        "the same ndcg@10 on every one of the 4 users, with different lists (of 10 in the data): "
        "a tie no test can weigh, and not evidence that they are equal: 4 users only say they "
        "differ for fewer than 75% of users like these (95 %, rule of three)."
    )


def test_a_near_tie_is_not_called_a_tie() -> None:
    a = np.array([0.0, 1.0, 0.5, 0.0])
    b = a.copy()
    b[3] = 0.25
    comparisons = compare_to_best([_digested("a", b, "L1"), _digested("b", a, "L1")])
    assert comparisons[0].tied_users == 0 and not comparisons[0].identical_lists
    verdict = judge(comparisons, evaluated_users=4, users_in_data=4, split="temporal", k=10)
    assert verdict.warning is None or "tie" not in verdict.warning


def test_evaluate_says_identical_lists_on_a_tiny_shop(tmp_path: Path) -> None:
    """Six users who saw the same three items: each has one item left to get, so every model
    lists it alone, and the command says so instead of printing a bare tie."""
    rows = [f"u{u},i{i},2026-01-0{i}T0{u}:00:00Z" for u in range(1, 7) for i in range(1, 4)]
    data = tmp_path / "tiny.csv"
    data.write_text("user_id,item_id,timestamp\n" + "\n".join(rows) + "\n")
    args = ["evaluate", "--data", str(data), "--models", "popular,itemknn,ease"]
    shown = CliRunner().invoke(app, [*args, "--split", "leave-last-out"], terminal_width=300)
    assert shown.exit_code == 0, shown.output
    said = " ".join(shown.stdout.split())
    assert "warning: popular, itemknn and ease gave identical lists on all 6 users" in said
    assert "fewer than 50% of users like these" in said


def test_the_same_items_in_another_order_are_not_identical_lists() -> None:
    """Two models list the same items to every user, one in reverse order, and neither hits:
    both score 0 everywhere, a tie, but their lists differ (order is what a list shows), so the
    warning must say "different lists"; a true copy of the lists is called identical."""
    users = [f"u{u}" for u in range(4)]
    data = views([(u, f"i{i}") for i in range(6) for u in users])
    # each user's held-out item is a new one (column 6): no list can hit it
    truth = GroundTruth(
        np.array(users, dtype=object),
        sparse.csr_array((np.ones(4, np.float32), (np.arange(4), np.full(4, 6))), shape=(4, 7)),
    )
    lists = np.tile(np.arange(5), (4, 1))

    def scored(name: str, top: np.ndarray) -> ModelResult:
        return score_lists(
            name, {}, top, data, truth, 5, ["ndcg"], curve_k=0, features=None,
            fit_seconds=0.0, recommend_seconds=0.0,
        )  # fmt: skip

    results = [scored("a", lists), scored("copy", lists.copy()), scored("rev", lists[:, ::-1])]
    comparisons = compare_to_best(results)
    assert [(c.model, c.tied_users, c.identical_lists) for c in comparisons] == [
        ("copy", 4, True),
        ("rev", 4, False),
    ]
    verdict = judge(comparisons, evaluated_users=4, users_in_data=4, split="temporal", k=5)
    assert verdict.warning is not None
    assert verdict.warning.startswith(
        "a and copy gave identical lists on all 4 users; a and rev score exactly the same "
        "ndcg@5 on every one of the 4 users, with different lists"
    )


def test_the_rule_of_three_bound_stops_at_every_user() -> None:
    """3 / 2 users is 150 %: a share cannot exceed all users, so the bound reads 100 %."""
    same = np.array([0.0, 1.0])
    comparisons = compare_to_best([_digested("a", same, "L1"), _digested("b", same.copy(), "L1")])
    verdict = judge(comparisons, evaluated_users=2, users_in_data=2, split="temporal", k=10)
    assert verdict.warning is not None
    assert "2 users only say they differ for fewer than 100% of users like these" in verdict.warning
