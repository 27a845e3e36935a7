"""Exploration on new arrivals in a simulated day: Thompson slots vs ε-slots vs no exploration.

A simulated shop (``recsmith.simulate``) is trained without the events of 40 items, which then
arrive "today" (created at the start of the simulated day, no events). Eight of them are made
truly good — as appealing as the shop's most popular item (their popularity bias set to the
largest) — the rest keep the simulator's own quality. Simulated users then ask for lists all day
(requests in batches of 64, as the server's coalescer answers them), click by the truth, and the
clicks are attributed to what was shown; the bandit counts live in a real SQLite store and sync
every 640 requests (about a second of a busy shop), as the server's ``BanditBoard`` does.

The click model (as ``experiment_simulation.py``): position p is examined with 1/sqrt(p) and
clicked with sigmoid(-2 + 0.37 * affinity). The exploring slot is position 3, its pool the new
arrivals. Reported per policy, mean over seeds:

- regret (cumulative after 1 h, 6 h and the day): at the slot, the summed gap between the best
  click probability any eligible choice had for that user (the ranked item or any new arrival)
  and the click probability of what was shown;
- clicks per 1,000 lists (all positions);
- discovered: the share of the good new items with at least 5 attributed clicks by the end of
  the day (evidence a retrain would pick up), and the hour the last of them got there.

    PYTHONPATH=src OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/explore_sim.py
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from calibration import calibration_line

from recsmith.config import EventSettings
from recsmith.events.validate import validate_events, validate_items
from recsmith.exploration.board import BanditBoard
from recsmith.exploration.config import ExploreConfig
from recsmith.exploration.explorer import EXPLORED, Explorer, ExploreRequest
from recsmith.pipeline.artifact import train_pipeline
from recsmith.pipeline.config import (
    PipelineConfig,
    RankingConfig,
    RetrievalConfig,
    SourceConfig,
)
from recsmith.pipeline.runtime import Pipeline
from recsmith.simulate import Simulation, simulate
from recsmith.store.sqlite import SQLiteStore

K, SLOT, BATCH, SYNC_EVERY = 10, 3, 64, 640
N_NEW, N_GOOD, DISCOVERED_AT = 40, 8, 5
POLICIES: dict[str, dict[str, object] | None] = {
    "none": None,
    "epsilon 0.1": {"policy": "epsilon", "epsilon": 0.1, "slots": [SLOT]},
    "epsilon 0.3": {"policy": "epsilon", "epsilon": 0.3, "slots": [SLOT]},
    "thompson 0.3": {"policy": "thompson", "epsilon": 0.3, "slots": [SLOT]},
    "thompson 1.0": {"policy": "thompson", "epsilon": 1.0, "slots": [SLOT]},
}


def shop(seed: int) -> tuple[Simulation, Pipeline, np.ndarray, np.ndarray, datetime]:
    """The simulated shop, its pipeline trained without the new items, the new items' ids, the
    good ones among them, and the start of the day they arrive."""
    sim = simulate(n_users=2000, n_items=600, seed=seed)
    rng = np.random.default_rng(seed)
    new = np.sort(rng.choice(len(sim.item_map), N_NEW, replace=False))
    good = rng.choice(new, N_GOOD, replace=False)
    bias = sim.item_bias.copy()
    bias[good] = bias.max()
    sim = replace(sim, item_bias=bias)
    new_ids = sim.item_map.to_external(new)
    day = datetime.fromisoformat(str(sim.events["timestamp"].max()).replace("Z", "+00:00"))
    trained = sim.events[~sim.events["item_id"].isin(set(new_ids))]
    events, _ = validate_events(trained, EventSettings())
    records = [
        {**r, "created_at": day.isoformat()} if r["item_id"] in set(new_ids) else r
        for r in sim.items
    ]
    items, _ = validate_items(records)
    knn = SourceConfig(name="knn", model="itemknn", quota=60)
    arrivals = SourceConfig(name="new", kind="new_arrivals", quota=5)
    config = PipelineConfig(
        retrieval=RetrievalConfig(sources=[knn, arrivals]), ranking=RankingConfig(enabled=False)
    )
    pipeline = train_pipeline(config, events, dict(EventSettings().weights), items=items)
    return sim, pipeline, new_ids, sim.item_map.to_external(good), day


def with_policy(pipeline: Pipeline, explore: dict[str, object] | None) -> Pipeline:
    """The same trained pipeline serving with another ``[explore]`` (None: deterministic)."""
    out = copy.copy(pipeline)
    out.explorer = (
        None
        if explore is None
        else Explorer(
            ExploreConfig.model_validate(explore),
            pipeline.reranker.rules,
            pipeline.bundle.items,
            pipeline.attrs.created_ts,
            np.zeros(len(pipeline.bundle.items)),
        )
    )
    return out


def click_probability(sim: Simulation, users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """P(click | examined) for row-wise (user, item) pairs; items may be -1 (nothing shown)."""
    u = np.broadcast_to(sim.user_map.to_index(users)[:, None], items.shape)
    i = sim.item_map.to_index(np.where(items == None, "", items).ravel())  # noqa: E711
    i = i.reshape(items.shape)
    pref = (sim.user_factors[u] * sim.item_factors[np.maximum(i, 0)]).sum(-1)
    pref = pref + sim.item_bias[np.maximum(i, 0)]
    return np.where(i >= 0, 1 / (1 + np.exp(-(-2.0 + 0.37 * pref))), 0.0)


def run_day(
    sim: Simulation,
    pipeline: Pipeline,
    new_ids: np.ndarray,
    good_ids: np.ndarray,
    day: datetime,
    requests: int,
    seed: int,
    workdir: Path,
) -> dict[str, float]:
    rng = np.random.default_rng(seed + 1)
    store = SQLiteStore(workdir / f"arms-{time.perf_counter_ns()}.sqlite")
    board = BanditBoard(store, {"click": "click"})
    user_ids = sim.user_map.to_external(np.arange(len(sim.user_map)))
    plain = pipeline.answer(user_ids, K)  # the ranked lists (the state does not change all day)
    ranked_at_slot = np.asarray(
        [row[SLOT - 1] if len(row) >= SLOT else None for row in plain.lists.item_ids], dtype=object
    )
    examined = 1 / np.sqrt(np.arange(1, K + 1))
    regret = clicks = 0.0
    regret_at: dict[str, float] = {}  # cumulative regret after the first hour, six hours
    good_clicks = dict.fromkeys(good_ids.tolist(), 0)
    found_at: dict[str, float] = {}
    start_us = int(day.timestamp() * 1_000_000)
    day_us = 86_400_000_000
    for n in range(0, requests, BATCH):
        who = rng.integers(0, len(user_ids), BATCH)
        users = user_ids[who]
        rids = [f"s{seed}-r{n + j}" for j in range(BATCH)]
        now = start_us + day_us * n // requests
        answer = pipeline.answer(users, K, explore=ExploreRequest(rids, board.counts, now))
        shown = np.full((BATCH, K), None, dtype=object)
        for q, row in enumerate(answer.lists.item_ids):
            shown[q, : len(row)] = row
        p = click_probability(sim, users, shown)
        clicked = rng.random(p.shape) < p * examined
        clicks += clicked.sum()
        # regret at the slot: the best of the ranked item and every new arrival, per user
        options = np.column_stack([ranked_at_slot[who], np.tile(new_ids, (BATCH, 1))])
        best = click_probability(sim, users, options).max(axis=1)
        regret += float((best - p[:, SLOT - 1]).sum())
        for hours in (1, 6):
            if f"regret_{hours}h" not in regret_at and 24.0 * (n + BATCH) / requests >= hours:
                regret_at[f"regret_{hours}h"] = regret
        if pipeline.explorer is not None:
            for q in range(BATCH):
                row = answer.lists.item_ids[q]
                board.shown(list(row), [EXPLORED in s for s in answer.sources[q]])
            hit = shown[clicked]
            board.attributed(pd.DataFrame({"item_id": hit, "event_type": "click"}))
        for item in shown[clicked]:
            if item in good_clicks:
                good_clicks[item] += 1
                if good_clicks[item] == DISCOVERED_AT:
                    found_at[item] = 24.0 * n / requests
        if (n // BATCH) % (SYNC_EVERY // BATCH) == 0:
            board.sync()
    store.close()
    lists = (requests // BATCH) * BATCH
    return {
        **regret_at,
        "regret": regret,
        "clicks_per_1000": 1000 * clicks / lists,
        "discovered": len(found_at) / len(good_ids),
        "last_found_h": max(found_at.values()) if len(found_at) == len(good_ids) else np.nan,
    }


def answer_ms(served: dict[str, Pipeline], users: np.ndarray, repeat: int = 40) -> None:
    """Best of ``repeat`` ``answer`` calls per policy for 1 and for 64 users, the policies
    interleaved (so a burst of load on a shared machine hits them alike), printed."""
    best = {(name, size): np.inf for name in served for size in (1, len(users))}
    for n in range(repeat):
        for name, pipeline in served.items():
            for size in (1, len(users)):
                ids = [f"t{n}-{j}" for j in range(size)]
                started = time.perf_counter()
                pipeline.answer(users[:size], K, explore=ExploreRequest(ids))
                elapsed = time.perf_counter() - started
                best[name, size] = min(best[name, size], elapsed)
    for name in served:
        one, batch = best[name, 1] * 1e3, best[name, len(users)] * 1e3
        print(f"answer_ms {name}: 1 user {one:.2f}, {len(users)} users {batch:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=20_000, help="lists per simulated day")
    parser.add_argument("--latency-only", action="store_true", help="only the answer times")
    args = parser.parse_args()
    print(calibration_line())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            sim, pipeline, new_ids, good_ids, day = shop(seed)
            if seed == 0:  # what each policy adds to a request (Pipeline.answer)
                served = {name: with_policy(pipeline, e) for name, e in POLICIES.items()}
                answer_ms(served, sim.user_map.to_external(np.arange(BATCH)))
            if args.latency_only:
                return
            for name, explore in POLICIES.items():
                started = time.perf_counter()
                result = run_day(
                    sim,
                    with_policy(pipeline, explore),
                    new_ids,
                    good_ids,
                    day,
                    args.requests,
                    seed,
                    Path(tmp),
                )
                rows.append(
                    {
                        "policy": name,
                        "seed": seed,
                        **result,
                        "seconds": time.perf_counter() - started,
                    }
                )
                print(rows[-1], flush=True)
    frame = pd.DataFrame(rows)
    summary = frame.groupby("policy", sort=False).agg(
        regret_1h=("regret_1h", "mean"),
        regret_6h=("regret_6h", "mean"),
        regret=("regret", "mean"),
        regret_sd=("regret", "std"),
        clicks_per_1000=("clicks_per_1000", "mean"),
        discovered=("discovered", "mean"),
        last_found_h=("last_found_h", "mean"),
        seconds=("seconds", "mean"),
    )
    print(
        f"\n{args.seeds} seeds x {args.requests:,} lists, k={K}, slot {SLOT}, "
        f"{N_NEW} new items ({N_GOOD} good)"
    )
    print(summary.round(2).to_string())


if __name__ == "__main__":
    main()
