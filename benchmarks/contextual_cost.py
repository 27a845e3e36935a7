"""What the contextual bandit (``[contextual]``) costs a request: CPU per choice and per update,
and a whole request with and without it, in one run.

    PYTHONPATH=src OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/contextual_cost.py

Part 1, the bandit's own steps, CPU µs per call (``time.process_time``, best of ``--rounds``
rounds of ``--calls`` calls, the steps interleaved round by round):

* ``no bandit``: ``contextual_choice`` for a pipeline without ``[contextual]`` (what every
  request pays today: a lookup that answers None);
* ``choose, linear_thompson`` / ``choose, linucb``: ``contextual_choice`` building the context
  and choosing an arm (Thompson: the arm of a banked draw and its propensity over the bank);
  ``+ ranker_features``: with the ranker's device, weekday and user-events columns (d = 13);
* ``shown``: the round added to the arm's A (once per list served);
* ``attributed, per event``: a batch of 64 attributed clicks added to b, divided by 64;
* ``bank rebuild``: the 256 posterior draws, redrawn once per changed state (at most once per
  second's sync, not per request); ``sync``: one store write and read of the sums (every second).

Part 2, whole requests: ``GET /v1/users/{id}/recommendations`` on two apps in one process, one
serving the pipeline with ``[contextual]`` (linear Thompson over the pipeline's list and the
trending source's), one the same pipeline without it, blocks of requests interleaved; CPU µs per
request (the process's CPU, all threads: the test client's server thread included) and the
bandit's share of it. Once with the response cache off in both (the bandit's own cost) and once
on (400 users asked in turn, so the no-bandit app answers repeats from its cache, which a
request whose list a bandit chooses bypasses, as an exploring pipeline's does).
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from calibration import calibration_line
from fastapi.testclient import TestClient

from recsmith.config import DecisionSettings, EventSettings, Settings
from recsmith.events.validate import validate_events, validate_items
from recsmith.exploration.contextual import ContextualBoards, ContextualConfig, contextual_choice
from recsmith.exploration.linear import thompson_bank
from recsmith.pipeline.artifact import train_pipeline
from recsmith.pipeline.config import PipelineConfig
from recsmith.pipeline.runtime import Pipeline
from recsmith.serving import create_api_key, create_app
from recsmith.simulate import simulate
from recsmith.store.open import open_store

ARMS = ["pipeline", "trending"]
BANDITS = (("no bandit", None), ("linear_thompson", "linear_thompson"))


def trained(users: int, items: int) -> Pipeline:
    sim = simulate(n_users=users, n_items=items, seed=3)
    (events, _), (catalog, _) = (
        validate_events(sim.events, EventSettings()),
        validate_items(sim.items),
    )
    config = PipelineConfig.model_validate(
        {
            "retrieval": {
                "sources": [
                    {"name": "knn", "model": "itemknn", "quota": 100},
                    {"name": "trending", "model": "trending", "quota": 100},
                ]
            },
            "ranking": {"enabled": False},
            "contextual": {"arms": ARMS},
        }
    )
    return train_pipeline(config, events, dict(EventSettings().weights), items=catalog)


def without_bandit(pipeline: Pipeline, policy: str | None, ranker: bool = False) -> Pipeline:
    """The same trained pipeline with ``[contextual]`` set to ``policy`` (None: no bandit),
    ``ranker``: with ``ranker_features``."""
    out = copy.copy(pipeline)
    bandit = (
        None
        if policy is None
        else ContextualConfig(arms=ARMS, policy=policy, ranker_features=ranker)  # type: ignore[arg-type]
    )
    out.config = pipeline.config.model_copy(update={"contextual": bandit})
    return out


def per_call_us(
    steps: dict[str, Callable[[int], None]], calls: int, rounds: int
) -> dict[str, float]:
    """Best-of-rounds CPU µs per call of each step, the steps interleaved round by round."""
    best = dict.fromkeys(steps, np.inf)
    for r in range(rounds):
        for name, step in steps.items():
            start = time.process_time()
            for n in range(calls):
                step(r * calls + n)
            best[name] = min(best[name], (time.process_time() - start) / calls * 1e6)
    return best


def part_one(pipeline: Pipeline, folder: Path, calls: int, rounds: int) -> None:
    store = open_store(f"sqlite:///{folder / 'steps.db'}")
    kinds = DecisionSettings().kinds()
    boards = ContextualBoards(store, kinds)
    served = {p: without_bandit(pipeline, p) for p in (None, "linear_thompson", "linucb")}
    served["ranker"] = without_bandit(pipeline, "linear_thompson", ranker=True)
    users = [str(u) for u in pipeline.bundle.users.external_ids[:50]]

    def choose(policy: str | None) -> Callable[[int], None]:
        return lambda n: contextual_choice(
            boards, served[policy], n % 50, n % 3 > 0, n % 24, None, f"req-{n}",
            users[n % 50], "mobile",
        )  # fmt: skip

    warm = contextual_choice(boards, served["linear_thompson"], 3, True, 12, None, "warm")
    assert warm is not None
    board = warm.board
    for n in range(200):  # a state with some data, then synced (the bank is drawn for it)
        board.shown(ARMS[n % 2], warm.context)
    board.sync()
    clicks = pd.DataFrame(
        {
            "event_type": ["click"] * 64,
            "placement": [None] * 64,
            "arm": [ARMS[n % 2] for n in range(64)],
            "arm_context": [json.dumps(list(warm.context))] * 64,
        }
    )
    steps: dict[str, Callable[[int], None]] = {
        "no bandit": choose(None),
        "choose, linear_thompson": choose("linear_thompson"),
        "choose, linucb": choose("linucb"),
        "choose, linear_thompson + ranker_features": choose("ranker"),
        "shown": lambda n: board.shown(ARMS[n % 2], warm.context),
        "attributed, per event": lambda n: board.attributed(clicks),
    }
    found = per_call_us(steps, calls, rounds)
    found["attributed, per event"] /= 64
    slow = {
        "bank rebuild (per state change)": lambda n: thompson_bank(board.state, 1.0, 256, n),
        "sync (every second)": lambda n: board.sync(),
    }
    found |= per_call_us(slow, max(calls // 20, 5), rounds)
    print(f"\nbandit steps, CPU µs per call (best of {rounds} rounds of {calls}; 2 arms, d = 5):")
    for name, us in found.items():
        print(f"  {name:<44} {us:9.1f}")
    store.close()


def part_two(pipeline: Pipeline, folder: Path, requests: int, blocks: int) -> None:
    apps = {}
    variants = [(f"{n}, cache {c}", p, c) for c in ("off", "on") for n, p in BANDITS]
    for name, policy, cache in variants:
        url = f"sqlite:///{folder / f'{policy}-{cache}.db'}"
        store = open_store(url)
        _, secret = create_api_key(store, "t", ["read"])
        store.close()
        settings = Settings(
            store={"url": url}, serving={"cache_entries": 0 if cache == "off" else 20_000}
        )
        client = TestClient(create_app(settings, bundle=without_bandit(pipeline, policy)))
        client.__enter__()
        apps[name] = (client, {"Authorization": f"Bearer {secret}"})
    cpu = {name: [] for name in apps}
    for b in range(blocks + 1):  # block 0 warms them up and is not counted
        for name, (client, auth) in apps.items():
            start = time.process_time()
            for n in range(requests):
                user = f"u{(b * requests + n) % 400 + 1:04d}"
                answered = client.get(f"/v1/users/{user}/recommendations?k=10", headers=auth)
                assert answered.status_code == 200, answered.text
            if b:
                cpu[name].append((time.process_time() - start) / requests * 1e6)
    for client, _ in apps.values():
        client.__exit__(None, None, None)
    print(
        f"\nwhole requests, CPU µs per request (median of {blocks} blocks of {requests}, "
        "interleaved):"
    )
    for name, values in cpu.items():
        base = np.median(cpu[name.replace("linear_thompson", "no bandit")])
        med = np.median(values)
        print(f"  {name:<28} {med:8.0f}  (blocks {min(values):.0f}–{max(values):.0f})  "
              f"{med - base:+.0f} µs, {100 * (med / base - 1):+.1f} %")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--blocks", type=int, default=6)
    parser.add_argument("--steps-only", action="store_true", help="part 1 only")
    args = parser.parse_args()
    print(calibration_line())
    pipeline = trained(400, 300)
    with tempfile.TemporaryDirectory() as tmp:
        part_one(pipeline, Path(tmp), args.calls, args.rounds)
        if not args.steps_only:
            part_two(pipeline, Path(tmp), args.requests, args.blocks)


if __name__ == "__main__":
    main()
