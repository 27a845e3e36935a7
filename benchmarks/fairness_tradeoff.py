"""What the fairness controls cost in accuracy: trade-off curves on real data and the simulator.

Part 1, MovieLens 100K (genres as categories; a user's latest 10 ratings held out, the rest
train): an EASE model (λ = 500, fit here in numpy: the re-ranking is under test, not the model)
proposes the 100 best unseen items per user; ``recsmith.rerank.rerank`` cuts them to 10

* with calibration λ = 0 … 1 → NDCG@10 vs miscalibration (Steck's KL, ``evaluation.fairness``);
* with popularity penalty β = 0 … 2 → NDCG@10 vs exposure Gini over the catalogue;
* group parity: NDCG@10 per activity bucket (light / medium / heavy) before and after;
* the stage's cost per call with each control, batches of 1 and 64 users.

Each point carries a 95 % interval: per-user means with a normal interval over users; the Gini
(not a mean over users) with a basic bootstrap over users (200 resamples).

Part 2, the simulator (true preferences known; 2,000 users, 1,000 items, 20 categories): the same
model and candidates, then
* calibration: true utility (mean true preference of the listed items) and the KL between each
  user's *true* taste mix and their list's mix, λ = 0 … 1;
* an exposure floor (``at_least``) for "good but unpopular" items (bottom half by training
  popularity, top half by mean true preference): the share of lists showing at least one, the
  group's slot share and the true utility, floor 0 / 0.1 / 0.2 / 0.3, over the model's 100
  candidates alone and with the group's own candidates added as a pipeline adds them.

    python benchmarks/fairness_tradeoff.py [--users N]   # N: subsample MovieLens users
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from calibration import calibration_line
from scipy import sparse

from recsmith.evaluation.fairness import exposure, gini, group_matrix, miscalibration
from recsmith.evaluation.parity import activity_groups
from recsmith.events.schema import Item
from recsmith.fairness import ExposureRule, build_fairness
from recsmith.ids import IdMap
from recsmith.rerank import ItemTable, rerank
from recsmith.retrieval.candidates import Candidates
from recsmith.retrieval.queries import Queries
from recsmith.simulate import simulate

ML = Path("/work/shared/datasets/movielens-100k")
K, POOL, HOLDOUT = 10, 100, 10


def ease_scores(train: sparse.csr_array, lam: float = 500.0) -> np.ndarray:
    """EASE (Steck 2019): B = I − P·diag(1/diag(P)), P = (XᵀX + λI)⁻¹; scores X·B."""
    gram = (train.T @ train).toarray().astype(np.float64)
    gram[np.diag_indices_from(gram)] += lam
    p = np.linalg.inv(gram)
    b = -p / np.diag(p)
    b[np.diag_indices_from(b)] = 0.0
    return np.asarray(train @ b)


def pool(scores: np.ndarray, train: sparse.csr_array) -> Candidates:
    """The ``POOL`` best unseen items per user, best first."""
    s = np.where(train.toarray() > 0, -np.inf, scores)
    top = np.argsort(-s, axis=1, kind="stable")[:, :POOL]
    n = len(s)
    query = np.repeat(np.arange(n), POOL).astype(np.int32)
    items = top.ravel().astype(np.int32)
    score = np.take_along_axis(s, top, axis=1).ravel().astype(np.float32)
    return Candidates(
        n, ("ease",), query, items, score, score[:, None].copy(), np.ones((len(items), 1), np.int16)
    )


def lists(out: Candidates) -> np.ndarray:
    """int [n_users, K] of the re-ranked lists (-1 = empty)."""
    recs = np.full((out.n_queries, K), -1)
    rank = np.arange(len(out)) - out.bounds()[out.query]
    recs[out.query, rank] = out.items
    return recs


def ndcg(recs: np.ndarray, truth: sparse.csr_array) -> np.ndarray:
    """Per-user binary NDCG@K against held-out items."""
    dense = truth.toarray() > 0
    hit = np.take_along_axis(dense, np.maximum(recs, 0), axis=1) & (recs >= 0)
    disc = 1.0 / np.log2(np.arange(2, K + 2))
    ideal = np.cumsum(disc)[np.minimum(dense.sum(axis=1), K) - 1]
    return (hit * disc).sum(axis=1) / ideal


def mean_ci(x: np.ndarray) -> str:
    x = x[np.isfinite(x)]
    half = 1.96 * x.std(ddof=1) / np.sqrt(len(x))
    return f"{x.mean():.4f} ± {half:.4f}"


def gini_ci(recs: np.ndarray, n_items: int, rng: np.random.Generator) -> str:
    def g(rows: np.ndarray) -> float:
        r = recs[rows]
        return gini(np.bincount(r[r >= 0], minlength=n_items).astype(float))

    # basic (reverse-percentile) bootstrap: resampling users with repeats concentrates exposure,
    # so the plain percentile interval of a Gini sits above the estimate; 2θ − q corrects that
    theta = g(np.arange(len(recs)))
    boot = [g(rng.integers(0, len(recs), len(recs))) for _ in range(200)]
    lo, hi = 2 * theta - np.percentile(boot, [97.5, 2.5])
    return f"{theta:.4f} [{lo:.4f}, {hi:.4f}]"


def movielens(n_users: int | None, rng: np.random.Generator) -> None:
    data = pd.read_csv(ML / "u.data.gz", sep="\t", names=["u", "i", "r", "t"])
    genres = [g.split("|")[0] for g in (ML / "u.genre").read_text().splitlines() if g.strip()]
    with open(ML / "u.item", encoding="latin-1") as fh:
        rows = [line.rstrip("\n").split("|") for line in fh if line.strip()]
    cats = {int(r[0]): [genres[j] for j, f in enumerate(r[5:]) if f == "1"] for r in rows}
    users = np.sort(data.u.unique())
    if n_users is not None and n_users < len(users):
        users = np.sort(rng.choice(users, n_users, replace=False))
        data = data[data.u.isin(users)]
    item_ids = np.sort(data.i.unique())
    u = np.searchsorted(users, data.u)
    i = np.searchsorted(item_ids, data.i)
    latest = data.assign(u=u, i=i).sort_values(["u", "t", "i"])
    rank_from_end = latest.groupby("u").cumcount(ascending=False)
    test = latest[rank_from_end < HOLDOUT]
    train_rows = latest[rank_from_end >= HOLDOUT]
    shape = (len(users), len(item_ids))
    train = sparse.csr_array((np.ones(len(train_rows)), (train_rows.u, train_rows.i)), shape=shape)
    truth = sparse.csr_array((np.ones(len(test)), (test.u, test.i)), shape=shape)
    ids = IdMap([str(x) for x in item_ids])
    table = ItemTable.from_items(
        [Item(item_id=str(x), categories=cats[int(x)]) for x in item_ids], ids
    )
    groups, _ = group_matrix([cats[int(x)] for x in item_ids])
    cands = pool(ease_scores(train), train)
    counts = np.asarray(train.sum(axis=0)).ravel()
    activity, _ = activity_groups(np.diff(train.indptr))
    print(
        f"\nMovieLens 100K: {shape[0]} users, {shape[1]} items, {len(genres)} genres, "
        f"holdout {HOLDOUT} latest per user, k={K}, pool {POOL}"
    )

    print("calibration λ | NDCG@10 | miscalibration (KL) | ms")
    parity = {}
    for lam in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0):
        fair = build_fairness(table, calibration=lam)
        t0 = time.perf_counter()
        out = rerank(cands, k=K, table=table, item_ids=ids, fairness=fair, history=train)
        ms = (time.perf_counter() - t0) * 1e3
        recs = lists(out)
        nd = ndcg(recs, truth)
        kl = miscalibration(recs, train, groups)
        print(f"{lam:.1f} | {mean_ci(nd)} | {mean_ci(kl)} | {ms:.0f}")
        if lam in (0.0, 0.6):
            parity[f"calibration {lam}"] = nd

    print("popularity β | NDCG@10 | exposure Gini [95% bootstrap] | catalogue shown")
    for beta in (0.0, 0.1, 0.25, 0.5, 1.0, 2.0):
        fair = build_fairness(table, popularity_penalty=beta, popularity=counts)
        out = rerank(cands, k=K, table=table, item_ids=ids, fairness=fair)
        recs = lists(out)
        nd = ndcg(recs, truth)
        shown = exposure(recs, shape[1]).catalogue_shown
        print(f"{beta:.2f} | {mean_ci(nd)} | {gini_ci(recs, shape[1], rng)} | {shown:.3f}")
        if beta == 0.5:
            parity[f"popularity {beta}"] = nd

    cost(cands, table, ids, train, counts)

    print("group parity (activity) | " + " | ".join(sorted(set(activity))))
    for name, nd in parity.items():
        cells = [mean_ci(nd[activity == g]) for g in sorted(set(activity))]
        print(f"{name} | " + " | ".join(cells))


def cost(
    cands: Candidates, table: ItemTable, ids: IdMap, train: sparse.csr_array, counts: np.ndarray
) -> None:
    """The re-ranking stage's time per call, plain and with each control: batches of 1 and 64
    users (a request, a coalesced burst), 100 candidates each, k = 10, best of 30 calls."""
    floor = ExposureRule(property="category", equals="Documentary", at_least=0.2)
    controls = {
        "plain (no fairness keys)": None,
        "calibration 0.6": build_fairness(table, calibration=0.6),
        "popularity_penalty 0.5": build_fairness(table, popularity_penalty=0.5, popularity=counts),
        "floor 0.2 (Documentary)": build_fairness(table, exposure=[floor]),
    }
    print("control | ms per call, 1 user | ms per call, 64 users")
    for name, fair in controls.items():
        cells = []
        for n in (1, 64):
            part = cands.take(np.flatnonzero(cands.query < n))
            part = replace(part, n_queries=n)
            best = float("inf")
            for _ in range(30):
                t0 = time.perf_counter()
                rerank(part, k=K, table=table, item_ids=ids, fairness=fair, history=train[:n])
                best = min(best, time.perf_counter() - t0)
            cells.append(f"{best * 1e3:.2f}")
        print(f"{name} | " + " | ".join(cells))


def simulator(rng: np.random.Generator) -> None:
    sim = simulate(seed=0)
    ev = sim.events
    u = sim.user_map.to_index(ev.user_id.to_numpy())
    i = sim.item_map.to_index(ev.item_id.to_numpy())
    n_u, n_i = len(sim.user_map), len(sim.item_map)
    train = sparse.csr_array((np.ones(len(ev)), (u, i)), shape=(n_u, n_i))
    train.sum_duplicates()
    train.data[:] = 1.0
    ids = IdMap([str(x) for x in sim.item_map.to_external(np.arange(n_i))])
    pref = sim.user_factors @ sim.item_factors.T + sim.item_bias  # true affinity
    counts = np.asarray(train.sum(axis=0)).ravel()
    quality = pref.mean(axis=0)
    unpopular = counts <= np.median(counts)
    good_tail = unpopular & (quality >= np.median(quality[unpopular]))
    cat = sim.item_category
    items = [
        Item(
            item_id=ids.to_external(np.asarray([j]))[0],
            categories=[f"c{cat[j]}"],
            properties={"tail": "good" if good_tail[j] else "no"},
        )
        for j in range(n_i)
    ]
    table = ItemTable.from_items(items, ids)
    groups, _ = group_matrix([[f"c{c}"] for c in cat])
    true_mix = sparse.csr_array(sim.user_taste)  # p(category | user), known here
    cands = pool(ease_scores(train), train)
    print(
        f"\nsimulator: {n_u} users, {n_i} items, {sim.user_taste.shape[1]} categories, "
        f"{len(ev):,} events; good-but-unpopular items: {int(good_tail.sum())}"
    )

    def utility(recs: np.ndarray) -> np.ndarray:
        return np.where(recs >= 0, np.take_along_axis(pref, np.maximum(recs, 0), 1), np.nan).mean(1)

    def true_kl(recs: np.ndarray) -> np.ndarray:
        """KL(true taste ‖ the list's category mix) per user."""
        mix = sparse.csr_array(
            (np.ones((recs >= 0).sum()), (np.nonzero(recs >= 0)[0], cat[recs[recs >= 0]])),
            shape=(n_u, sim.user_taste.shape[1]),
        )
        return _kl_rows(true_mix.toarray(), mix.toarray())

    print("calibration λ | true utility | KL(true taste ‖ list) | KL(history ‖ list)")
    for lam in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0):
        fair = build_fairness(table, calibration=lam)
        out = rerank(cands, k=K, table=table, item_ids=ids, fairness=fair, history=train)
        recs = lists(out)
        print(
            f"{lam:.1f} | {mean_ci(utility(recs))} | {mean_ci(true_kl(recs))} | "
            f"{mean_ci(miscalibration(recs, train, groups))}"
        )

    # as a pipeline serves: each floor's group brings its most popular items into the candidates
    queries = Queries(np.arange(n_u, dtype=np.int32), sparse.csr_array((n_u, n_i)), train)
    print(
        "good-tail floor | group pool | lists with ≥1 | slot share | group items shown | "
        "true utility | unmet"
    )
    for share in (0.0, 0.1, 0.2, 0.3):
        for pooled in (False, True) if share else (False,):
            rules = [ExposureRule(property="tail", equals="good", at_least=share)] if share else []
            fair = build_fairness(table, exposure=rules, popularity=counts if pooled else None)
            pool_cands = fair.prepare(cands, queries, K, calibrate=False)[0] if fair else cands
            out = rerank(pool_cands, k=K, table=table, item_ids=ids, fairness=fair)
            recs = lists(out)
            in_group = np.where(recs >= 0, good_tail[np.maximum(recs, 0)], False)
            unmet = sum(map(bool, fair.unmet(out, table, K))) if fair else 0
            print(
                f"{share:.1f} | {'yes' if pooled else 'no'} | "
                f"{mean_ci(in_group.any(axis=1).astype(float))} | "
                f"{mean_ci(in_group.mean(axis=1))} | "
                f"{len(np.unique(recs[in_group])) / good_tail.sum():.3f} | "
                f"{mean_ci(utility(recs))} | {unmet}"
            )


def _kl_rows(p: np.ndarray, q_mass: np.ndarray, alpha: float = 0.01) -> np.ndarray:
    """Steck's KL(p ‖ q̃) per row, q the normalised ``q_mass`` (as ``evaluation.fairness``)."""
    p = p / p.sum(axis=1, keepdims=True)
    q = q_mass / np.maximum(q_mass.sum(axis=1, keepdims=True), 1e-12)
    qs = (1 - alpha) * q + alpha * p
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(p > 0, p * np.log(p / qs), 0.0).sum(axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=None, help="subsample MovieLens users")
    args = parser.parse_args()
    print(calibration_line())
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    movielens(args.users, rng)
    simulator(rng)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
