"""Exposure, miscalibration and group parity against hand-computed values and a loop oracle."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from scipy import sparse, stats

from recsmith.evaluation.fairness import exposure, group_matrix, miscalibration
from recsmith.evaluation.parity import activity_groups, group_parity

# Two users, five items, three categories A, B, C. Item 2 is both A and B (half each).
LABELS = [("A",), ("B",), ("A", "B"), ("C",), ("C",)]
RECS = np.array([[0, 2, 3], [0, 1, -1]])  # user 1's last slot is empty
HISTORY = np.array(  # interaction weights
    [
        [0.0, 2.0, 0.0, 0.0, 0.0],  # user 0: item 1 (B) weight 2
        [1.0, 0.0, 0.0, 1.0, 0.0],  # user 1: items 0 (A) and 3 (C)
    ]
)


def test_exposure_by_hand() -> None:
    groups, names = group_matrix(LABELS)
    assert names == ["A", "B", "C"]
    e = exposure(RECS, 5, groups, names)
    # slots per item: [2, 1, 1, 1, 0] of 5 -> sorted [0,1,1,1,2], sum 5, n 5
    # G = ((2*1-6)*0 + (-2)*1 + 0*1 + 2*1 + 4*2) / (5*5) = 8/25
    assert e.gini == pytest.approx(8 / 25, abs=1e-12)
    # shares [.4,.2,.2,.2]: H = -(.4 log2 .4 + 3 * .2 log2 .2)
    assert e.entropy == pytest.approx(-(0.4 * math.log2(0.4) + 0.6 * math.log2(0.2)), abs=1e-12)
    assert e.catalogue_shown == pytest.approx(4 / 5)
    # position weights 1, 1/log2(3), 1/2: item 0 gets 1+1, item 2 1/log2 3, item 1 1/log2 3,
    # item 3 1/2, item 4 0
    w = 1 / math.log2(3)
    weighted = sorted([2.0, w, w, 0.5, 0.0])
    total = sum(weighted)
    g_w = sum((2 * j - 6) * x for j, x in enumerate(weighted, start=1)) / (5 * total)
    assert e.weighted_gini == pytest.approx(g_w, abs=1e-12)
    # group slots: A = 2 (item 0) + .5 (item 2) = 2.5, B = 1 + .5 = 1.5, C = 1; total 5
    by = {g.name: g for g in e.groups}
    assert by["A"].slot_share == pytest.approx(0.5)
    assert by["B"].slot_share == pytest.approx(0.3)
    assert by["C"].slot_share == pytest.approx(0.2)
    # weighted: A = 2 + w/2, B = w + w/2, C = 1/2
    assert by["A"].weighted_share == pytest.approx((2 + w / 2) / total)
    assert by["C"].weighted_share == pytest.approx(0.5 / total)
    # catalogue: A has items 0,2 (2 of 5), C 3,4; shown: A 2/2, C 1/2
    assert by["A"].catalogue_share == pytest.approx(2 / 5)
    assert by["A"].shown == pytest.approx(1.0)
    assert by["C"].shown == pytest.approx(0.5)
    # group slots [2.5, 1.5, 1] sorted [1, 1.5, 2.5]: G = (-2*1 + 0 + 2*2.5) / (3*5) = 3/15
    assert e.group_gini == pytest.approx(3 / 15, abs=1e-12)
    named = e.scalars()  # the names evaluate --json reports them under
    assert named["exposure_gini"] == pytest.approx(8 / 25, abs=1e-12)
    assert named["exposure_gini_weighted"] == pytest.approx(g_w, abs=1e-12)
    assert named["exposure_entropy"] == e.entropy
    assert named["catalogue_shown"] == pytest.approx(4 / 5)


def test_miscalibration_by_hand() -> None:
    groups, _ = group_matrix(LABELS)
    got = miscalibration(RECS, sparse.csr_array(HISTORY), groups)
    a = 0.01
    # user 0: p = B:1. list items 0 (A), 2 (A/2, B/2), 3 (C): q = A .5, B 1/6, C 1/3
    # q~(B) = .99 * 1/6 + .01 * 1; KL = 1 * log(1 / q~(B))
    u0 = math.log(1 / (0.99 / 6 + a))
    # user 1: p = A .5, C .5 (weights 1 and 1). list items 0 (A), 1 (B): q = A .5, B .5
    # q~(A) = .99*.5 + .01*.5 = .5; q~(C) = .99*0 + .01*.5 = .005
    u1 = 0.5 * math.log(0.5 / 0.5) + 0.5 * math.log(0.5 / 0.005)
    np.testing.assert_allclose(got, [u0, u1], rtol=0, atol=1e-12)


def test_miscalibration_weights_history_and_nan_without_groups() -> None:
    groups, _ = group_matrix(LABELS)
    history = sparse.csr_array(np.array([[3.0, 1.0, 0, 0, 0], [0, 0, 0, 0, 0.0]]))
    got = miscalibration(RECS, history, groups)
    # user 0: p = A .75, B .25; q = A .5, B 1/6, C 1/3
    qa, qb = 0.99 * 0.5 + 0.01 * 0.75, 0.99 / 6 + 0.01 * 0.25
    assert got[0] == pytest.approx(0.75 * math.log(0.75 / qa) + 0.25 * math.log(0.25 / qb))
    assert math.isnan(got[1])  # empty history: no mix to compare


def test_group_parity_by_hand() -> None:
    per_user = {
        "ndcg": np.array([0.0, 0.2, 0.4, 0.4, 1.0, 0.8]),
        "recall": np.array([1.0, 0.0, 0.0, 1.0, 1.0, 1.0]),
    }
    labels = np.array(["heavy", "light", "light", "heavy", "medium", "medium"], dtype=object)
    p = group_parity(per_user, labels, by="activity")
    assert [g.name for g in p.groups] == ["light", "medium", "heavy"]  # lightest first
    assert [g.metrics["ndcg"] for g in p.groups] == pytest.approx([0.3, 0.9, 0.2])
    assert [g.metrics["recall"] for g in p.groups] == pytest.approx([0.0, 1.0, 1.0])
    assert [g.users for g in p.groups] == [2, 2, 2]
    assert (p.best, p.worst) == ("medium", "heavy")
    assert p.gap == pytest.approx(0.7)  # .9 - .2
    # Welch: variances .02 (medium) and .08 (heavy), n = 2 each: se^2 = .01 + .04 = .05,
    # df = .05^2 / (.01^2 + .04^2) = 25/17
    df = 0.05**2 / (0.01**2 + 0.04**2)
    half = stats.t.ppf(0.975, df) * math.sqrt(0.05)
    assert (p.gap_ci_low, p.gap_ci_high) == pytest.approx((0.7 - half, 0.7 + half), abs=1e-9)
    # sample size per group: (1.959964 + 0.841621)^2 * (.02 + .08) / .7^2 = 1.6 -> 2
    assert p.users_needed == 2
    t = 0.7 / math.sqrt(0.05)
    assert p.gap_p_value == pytest.approx(2 * stats.t.sf(t, df), abs=1e-12)
    assert p.note == (
        "fewer than 30 users in light (2), medium (2), heavy (2): too few to rank; "
        f"the gap between medium and heavy is not significant (Welch p = {p.gap_p_value:.2g})"
    )


def test_group_parity_says_nothing_when_groups_are_large_and_the_gap_clear() -> None:
    ndcg = np.concatenate([np.tile([0.1, 0.3], 20), np.tile([0.6, 0.8], 20)])
    labels = np.array(["a"] * 40 + ["b"] * 40, dtype=object)
    p = group_parity({"ndcg": ndcg}, labels, by="property:x")
    assert (p.best, p.worst, p.gap) == ("b", "a", pytest.approx(0.5))
    assert p.gap_p_value < 1e-10
    assert p.note is None
    # one group only: no gap, and it says so
    alone = group_parity({"ndcg": ndcg}, np.array(["a"] * 80, dtype=object), by="property:x")
    assert alone.best is None and math.isnan(alone.gap)
    assert alone.note == "fewer than two groups with 2+ users: no gap to measure"


def test_activity_terciles_by_hand() -> None:
    labels, cut = activity_groups(np.array([1, 2, 3, 4, 5, 6, 7, 8, 9]))
    # quantiles (linear) at 1/3, 2/3 of 1..9: 3.6667, 6.3333
    assert list(labels) == ["light"] * 3 + ["medium"] * 3 + ["heavy"] * 3
    assert "light <=" in cut
    ties, _ = activity_groups(np.array([1, 1, 1, 1, 5]))
    assert list(ties) == ["light"] * 4 + ["heavy"]  # same count, same bucket


# --- an independent implementation written from the formulas, with loops ------------------------


def _oracle(recs, hist, labels, n_items, alpha=0.01):
    slots = [0.0] * n_items
    weighted = [0.0] * n_items
    for row in recs:
        for pos, item in enumerate(row, start=1):
            if item >= 0:
                slots[item] += 1
                weighted[item] += 1 / math.log2(pos + 1)

    def gini(xs):
        xs = sorted(xs)
        n, s = len(xs), sum(xs)
        return sum((2 * j - n - 1) * x for j, x in enumerate(xs, start=1)) / (n * s)

    total = sum(slots)
    entropy = -sum(x / total * math.log2(x / total) for x in slots if x > 0)
    kls = []
    for u, row in enumerate(recs):
        p: dict[str, float] = {}
        for i in range(n_items):
            if hist[u][i] > 0 and labels[i]:
                for g in set(labels[i]):
                    p[g] = p.get(g, 0.0) + hist[u][i] / len(set(labels[i]))
        q: dict[str, float] = {}
        for item in row:
            if item >= 0 and labels[item]:
                for g in set(labels[item]):
                    q[g] = q.get(g, 0.0) + 1 / len(set(labels[item]))
        if not p or not q:
            kls.append(float("nan"))
            continue
        sp, sq = sum(p.values()), sum(q.values())
        kl = 0.0
        for g, pg in p.items():
            pg /= sp
            qg = q.get(g, 0.0) / sq
            kl += pg * math.log(pg / ((1 - alpha) * qg + alpha * pg))
        kls.append(kl)
    return gini(slots), entropy, gini(weighted), kls


def test_agrees_with_loop_oracle_on_random_case() -> None:
    rng = np.random.default_rng(7)
    n_users, n_items, k = 300, 60, 8
    cats = ["a", "b", "c", "d", "e"]
    labels = [
        tuple(rng.choice(cats, size=rng.integers(0, 3), replace=False)) for _ in range(n_items)
    ]
    recs = np.stack([rng.choice(n_items, size=k, replace=False) for _ in range(n_users)])
    recs[rng.random(recs.shape) < 0.1] = -1
    hist = np.where(rng.random((n_users, n_items)) < 0.1, rng.random((n_users, n_items)), 0.0)
    groups, names = group_matrix(labels)
    e = exposure(recs, n_items, groups, names)
    kl = miscalibration(recs, sparse.csr_array(hist), groups)
    g, h, gw, kls = _oracle(recs.tolist(), hist.tolist(), labels, n_items)
    assert e.gini == pytest.approx(g, abs=1e-9)
    assert e.entropy == pytest.approx(h, abs=1e-9)
    assert e.weighted_gini == pytest.approx(gw, abs=1e-9)
    np.testing.assert_allclose(kl, kls, rtol=0, atol=1e-9)
    assert np.isfinite(kl).sum() > 250

    per_user = {"ndcg": rng.random(n_users)}
    groups_of = rng.choice(["x", "y", "z"], size=n_users).astype(object)
    parity = group_parity(per_user, groups_of, by="property:x")
    means = {
        name: sum(v for v, lab in zip(per_user["ndcg"], groups_of, strict=True) if lab == name)
        / sum(1 for lab in groups_of if lab == name)
        for name in ("x", "y", "z")
    }
    for score in parity.groups:
        assert score.metrics["ndcg"] == pytest.approx(means[score.name], abs=1e-9)
    assert parity.gap == pytest.approx(max(means.values()) - min(means.values()), abs=1e-9)


@pytest.mark.parametrize(
    ("call", "says"),
    [
        (lambda g: miscalibration(RECS, sparse.csr_array(HISTORY), g, alpha=0.0), "alpha"),
        (lambda g: miscalibration(RECS, sparse.csr_array(HISTORY[:1]), g), "history is"),
        (lambda g: miscalibration(RECS, sparse.csr_array(-HISTORY), g), "non-negative"),
        (lambda g: exposure(RECS, 4, g, ["A", "B", "C"]), "groups has 5 rows for 4 items"),
        (lambda g: exposure(RECS, 5, g, ["A", "B"]), "names has 2 entries"),
        (lambda g: exposure(np.array([[0, 7]]), 5, g, ["A", "B", "C"]), "recs must hold"),
        (lambda g: group_parity({"ndcg": np.ones(2)}, np.array(["a", "b"]), by="x", metric="mrr"),
         "metric 'mrr'"),
    ],
)  # fmt: skip
def test_bad_input_says_what_is_wrong(call, says: str) -> None:
    groups, _ = group_matrix(LABELS)
    with pytest.raises(ValueError, match=re.escape(says)):
        call(groups)
