"""Popularity within the user's profile segments vs global popularity, for cold users (#15).

    .venv/bin/python benchmarks/segment_fallback.py            # from the repository root

The one shared dataset with profiles is ml-100k (``u.user``: age, gender, occupation, zip code).
Cold users are users with at most N events before a time cut (N = 0: nobody knows them, and the
segment fallback is the whole list; N <= 5: few events, for information only, since such users
are served by the personalised sources). Lists come from ``segments.SegmentPopularity``, the code
that serves them; shrinkage m = inf is global popularity.

1. **Choice (validation).** ml-100k's train part (``temporal:0.8``) is cut again at its latest
   20 % of events; segments and counts are built on the events before, and the users who arrive
   after it are scored on what they chose. m is chosen there, among 10, 100, 1000 (a decade
   apart, fixed before looking).
2. **Confirmation (not chosen on).** The chosen m, unchanged, on (a) ml-100k's test split (the
   users with no training event), and (b) cold-start user splits of the whole data, seeds 1-3: a
   fifth of the users held out entirely, the rest's events train.

NDCG@10, seen items excluded; differences paired over the same users with 95 % bootstrap
intervals.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import pandas as pd
from calibration import calibration_line
from context_features import profiles
from pipeline_vs_models import DATASETS, load
from scipy import sparse

from recsmith.config import EventSettings
from recsmith.evaluation.metrics import ndcg_at_k
from recsmith.evaluation.significance import bootstrap_ci
from recsmith.evaluation.split import Split, parse_split
from recsmith.features.interactions import Interactions
from recsmith.retrieval.queries import Queries
from recsmith.segments.popularity import SegmentPopularity

K = 10
GRID = (10.0, 100.0, 1000.0)
MAX_PROPERTIES = 8


def scored(
    past: Interactions,
    users: np.ndarray,
    truth: sparse.csr_array,
    prof: dict[str, dict],
    shrinkage: float,
) -> np.ndarray:
    """Per-user NDCG@K of the segment lists (``shrinkage`` inf: global popularity)."""
    if np.isinf(shrinkage):
        prof, shrinkage = {}, 1.0
    table = SegmentPopularity.build(past, prof, max_properties=MAX_PROPERTIES, shrinkage=shrinkage)
    ids = past.users.to_external(users)
    empty = sparse.csr_array((len(users), past.n_items), dtype=np.float32)
    seen = sparse.csr_array(past.matrix[users] > 0, dtype=np.float32)
    queries = Queries(users, empty, seen)
    got = table.retrieve(queries, K, table.codes_of(ids))
    recs = np.full((len(users), K), -1, np.int64)
    recs[got.query, got.ranks.astype(np.int64) - 1] = got.items
    return ndcg_at_k(recs, truth, K)


def compare(
    past: Interactions, users: np.ndarray, truth: sparse.csr_array, prof: dict, grid: tuple
) -> tuple[list[str], dict[float, float]]:
    base = scored(past, users, truth, prof, np.inf)
    lines, means = [f"| popular | {base.mean():.4f} | | |"], {}
    for m in grid:
        got = scored(past, users, truth, prof, m)
        lo, hi = bootstrap_ci(got - base)
        means[m] = float((got - base).mean())
        lines.append(
            f"| segments, m = {m:g} | {got.mean():.4f} | {got.mean() - base.mean():+.4f} "
            f"| [{lo:+.4f}, {hi:+.4f}] |"
        )
    return lines, means


def time_cut(full: Interactions, share: float) -> tuple[Interactions, sparse.csr_array]:
    cut = np.quantile(full.event_ts, 1.0 - share, method="higher")
    past = full.subset(full.event_ts < cut)
    after = full.subset(full.event_ts >= cut).matrix
    new = sparse.csr_array(after - after.multiply(past.matrix > 0))
    new.eliminate_zeros()
    return past, sparse.csr_array(new > 0, dtype=np.float32)


def cold(past: Interactions, new: sparse.csr_array, at_most: int) -> np.ndarray:
    events = np.bincount(past.event_users, minlength=past.n_users)
    return np.flatnonzero((events <= at_most) & (np.diff(new.indptr) > 0)).astype(np.int32)


def table(title: str, users: int, rows: list[str]) -> list[str]:
    return [
        f"**{title}** ({users} users)",
        "",
        "| list | NDCG@10 | vs popular | 95 % paired CI |",
        "|---|---:|---:|---:|",
        *rows,
        "",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", default="1,2,3")
    args = parser.parse_args()
    print(calibration_line(), flush=True)
    started = time.perf_counter()
    fmt, folder, split = DATASETS["ml-100k"]
    events, _ = load(fmt, folder)
    prof = profiles(fmt, folder)
    weights = dict(EventSettings().weights)
    parts = parse_split(split).apply(events)
    train = Interactions.from_events(parts.train, weights)
    out = ["## Validation (the choice): ml-100k train part, cut at its latest 20 %", ""]
    past, new = time_cut(train, 0.2)
    chosen = {}
    for at_most in (0, 5):
        users = cold(past, new, at_most)
        rows, means = compare(past, users, new[users], prof, GRID)
        out += table(f"users with <= {at_most} events before the cut", len(users), rows)
        chosen[at_most] = max(means, key=lambda m: means[m])
    m = chosen[0]
    out += [f"Chosen on validation (N = 0): m = {m:g}", ""]
    out += ["## Confirmation (not chosen on), m fixed", ""]
    whole = Interactions.from_events(pd_concat(parts), weights)
    test_ts = np.quantile(whole.event_ts, 0.8, method="higher")
    past, new = time_cut(whole, float((whole.event_ts >= test_ts).mean()))
    for at_most in (0, 5):
        users = cold(past, new, at_most)
        rows, _ = compare(past, users, new[users], prof, (m,))
        out += table(f"ml-100k test split, <= {at_most} training events", len(users), rows)
    for seed in (int(s) for s in args.seeds.split(",")):
        held = np.random.default_rng(seed).random(whole.n_users) < 0.2
        past = whole.subset(~held[whole.event_users])
        truth = sparse.csr_array(whole.matrix > 0, dtype=np.float32)
        users = np.flatnonzero(held).astype(np.int32)
        rows, _ = compare(past, users, truth[users], prof, (m,))
        out += table(f"cold-start user split, seed {seed}", len(users), rows)
    # negative control: profiles shuffled across users carry no taste; the fallback must then
    # cost next to nothing (shrinkage is what protects it)
    ids = list(prof)
    shuffled = dict(
        zip(ids, np.random.default_rng(1).permutation(list(prof.values())), strict=True)
    )
    past, new = time_cut(whole, float((whole.event_ts >= test_ts).mean()))
    users = cold(past, new, 0)
    rows, _ = compare(past, users, new[users], shuffled, (m,))
    out += table("control: test split, profiles shuffled across users", len(users), rows)
    out.append(
        f"python {platform.python_version()}, numpy {np.__version__}; "
        f"{time.perf_counter() - started:.0f} s"
    )
    print("\n".join(out))


def pd_concat(parts: Split) -> pd.DataFrame:
    """The whole data again (train and test parts)."""
    return pd.concat([parts.train, parts.test], ignore_index=True)


if __name__ == "__main__":
    main()
