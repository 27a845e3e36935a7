"""``slist`` (SLIST's transition model) against a least-squares oracle on hand-written rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_transitions import DATA, rules, sequences

from recsmith.bundle import ModelBundle
from recsmith.models.registry import create

NAMES = ["a", "b", "c", "d"]


def ridge(inputs: list[dict[str, float]], targets: list[dict[str, float]], lam: float) -> dict:
    """argmin ‖Y − ZB‖² + λ‖B‖² by numpy's lstsq on [Z; √λ I] B = [Y; 0] (not the normal
    equations the model solves), as {(from, to): weight} for the positive off-diagonal
    weights: what the model keeps with enough neighbours."""
    z = np.array([[row.get(n, 0.0) for n in NAMES] for row in inputs])
    y = np.array([[row.get(n, 0.0) for n in NAMES] for row in targets])
    stacked = np.vstack([z, np.sqrt(lam) * np.eye(len(NAMES))])
    b = np.linalg.lstsq(stacked, np.vstack([y, np.zeros((len(NAMES), len(NAMES)))]), rcond=None)[0]
    return {
        (NAMES[i], NAMES[j]): b[i, j]
        for i in range(len(NAMES))
        for j in range(len(NAMES))
        if i != j and b[i, j] > 1e-6
    }


def unit(row: dict[str, float]) -> dict[str, float]:
    return {k: v / sum(row.values()) for k, v in row.items()}


# DATA (test_transitions): u1: a b c d, u2: a c, u3: b a (its b twice in a row counts once).
# history 2, steps 1: each step with a follower gives its item (1) and the one before (1/2),
# scaled to sum to one, as inputs, and the next item as the target.
STEP_INPUTS = [
    unit({"a": 1}), unit({"b": 1, "a": 0.5}), unit({"c": 1, "b": 0.5}),  # u1
    unit({"a": 1}),  # u2
    unit({"b": 1}),  # u3
]  # fmt: skip
STEP_TARGETS = [{"b": 1}, {"c": 1}, {"d": 1}, {"c": 1}, {"a": 1}]


def test_slit_is_the_ridge_solution_over_the_steps() -> None:
    model = create("slist", steps=1, history=2, regularization=0.5, neighbors=10).fit(DATA)
    expected = ridge(STEP_INPUTS, STEP_TARGETS, 0.5)
    assert rules(model, DATA) == pytest.approx(expected, rel=1e-4)


def test_targets_within_steps_weigh_one_over_distance() -> None:
    # steps 2 adds the follower after next at 1/2: u1's a -> c, b -> d
    targets = [{"b": 1, "c": 0.5}, {"c": 1, "d": 0.5}, {"d": 1}, {"c": 1}, {"a": 1}]
    model = create("slist", steps=2, history=2, regularization=0.5, neighbors=10).fit(DATA)
    assert rules(model, DATA) == pytest.approx(ridge(STEP_INPUTS, targets, 0.5), rel=1e-4)


def test_alpha_adds_whole_histories_predicting_themselves() -> None:
    # α = 0.5: every row of either kind weighed by √α or √(1 − α) in the stacked least squares;
    # as in the authors' code a history's input is scaled to sum to one, its target stays 0/1
    histories = [{"a": 1, "b": 1, "c": 1, "d": 1}, {"a": 1, "c": 1}, {"a": 1, "b": 1}]
    half = np.sqrt(0.5)
    rows = STEP_INPUTS + [unit(row) for row in histories]
    scaled = [{k: half * v for k, v in row.items()} for row in rows]
    goals = [{k: half * v for k, v in row.items()} for row in STEP_TARGETS + histories]
    model = create("slist", steps=1, history=2, regularization=0.5, neighbors=10, alpha=0.5)
    assert rules(model.fit(DATA), DATA) == pytest.approx(ridge(scaled, goals, 0.5), rel=1e-4)


def test_a_chain_by_hand_and_its_next_item_served() -> None:
    # three users a -> b -> c, history 1: rows a -> b and b -> c three times each, so the Gram
    # is diag(3, 3, 0) and B = 3 / (3 + λ) on a -> b and b -> c, nothing else. u4 met only a.
    chain = sequences(
        [(f"u{n}", item, t) for n in range(3) for t, item in enumerate("abc")] + [("u4", "a", 9)]
    )
    model = create("slist", steps=1, history=1, regularization=1.0)
    bundle = ModelBundle.train(chain, model)
    assert rules(model, chain) == pytest.approx({("a", "b"): 0.75, ("b", "c"): 0.75})
    assert bundle.recommend(["u4"], 1).item_ids[0].tolist() == ["b"]


def test_max_items_leaves_the_rare_items_out_of_the_fit() -> None:
    # d (one user) is the least popular: with 3 items kept it neither gets nor gives weight
    model = create("slist", steps=1, history=2, regularization=0.5, max_items=3).fit(DATA)
    assert rules(model, DATA)
    assert not [pair for pair in rules(model, DATA) if "d" in pair]


def test_a_saved_release_recommends_the_same(tmp_path: Path) -> None:
    bundle = ModelBundle.train(DATA, create("slist", history=2, regularization=0.5))
    bundle.save(tmp_path / "release")
    again = ModelBundle.load(tmp_path / "release")
    users = ["u1", "u2", "u3"]
    first, second = bundle.recommend(users, 3), again.recommend(users, 3)
    for a, b in zip(first.item_ids, second.item_ids, strict=True):
        assert list(a) == list(b)
