"""What excluding a user's stored items costs a request, before and after a release's store cut
(``recsmith.release_cut``, BENCHMARKS §90), on a ``serve_load.py`` shop whose release has a cut
(trained by ``recsmith train --pipeline … --store …``).

Per batch of ``--batch`` users drawn from the shop's ``users.txt`` (known users and newcomers,
as ``serve_load`` asks): *before*, the route's read of every stored item of each user and the
pipeline's one id lookup of them all (``ModelBundle.item_pairs``); *after*, the release's bound
for each user (``received_since``), the read of what was received since, and the same lookup.
Both build the exclusion rows (``ModelBundle.exclusions``), which must be equal batch for batch
(checked on every batch; the run stops otherwise). Process CPU per request, medians over
rounds that alternate the two (the order flipped every round).

    .venv/bin/python benchmarks/exclusion_read.py /tmp/shop --batch 1 --rounds 9
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as each server worker runs

import numpy as np
from calibration import calibration_line

from recsmith.pipeline.artifact import load_artifact
from recsmith.release_cut import received_since, store_identity
from recsmith.store.open import open_store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shop", type=Path, help="a serve_load.py --workdir with a cut release")
    parser.add_argument("--batch", type=int, default=1, help="users per pipeline call")
    parser.add_argument("--requests", type=int, default=2000, help="users per round and side")
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    print(calibration_line(), flush=True)
    pipeline = load_artifact(args.shop / "model")
    bundle = pipeline.bundle
    store = open_store(f"sqlite:///{args.shop / 'store.sqlite'}")
    identity = store_identity(store)
    if received_since(pipeline, identity, str(bundle.users.external_ids[0])) is None:
        raise SystemExit(f"{args.shop / 'model'} has no store cut for this store")
    users = (args.shop / "users.txt").read_text().split()
    drawn = np.random.default_rng(0).choice(users, size=args.requests).tolist()
    batches = [drawn[i : i + args.batch] for i in range(0, len(drawn), args.batch)]

    def before(batch: list[str]) -> list[list[str]]:
        return [store.user_items(u) for u in batch]

    def after(batch: list[str]) -> list[list[str]]:
        return [store.user_items(u, received_since(pipeline, identity, u)) for u in batch]

    sides: dict[str, Callable[[list[str]], list[list[str]]]] = {"before": before, "after": after}
    read = {name: 0 for name in sides}
    for batch in batches:  # the same exclusions, and how many stored ids each side reads
        idx = bundle.users.to_index(batch)
        rows = {name: side(batch) for name, side in sides.items()}
        for name, lists in rows.items():
            read[name] += sum(map(len, lists))
        old, new = (bundle.exclusions(idx, rows[n]) for n in sides)
        if (old != new).nnz or old.nnz != new.nnz:
            raise SystemExit(f"exclusions differ for {batch}")
    print(
        f"same exclusions on {len(batches)} batches of {args.batch}; stored ids read per "
        f"request: before {read['before'] / len(drawn):.1f}, after {read['after'] / len(drawn):.1f}"
    )
    cpu: dict[str, list[float]] = {name: [] for name in sides}
    for r in range(args.rounds):
        for name in list(sides)[:: 1 if r % 2 == 0 else -1]:
            side = sides[name]
            started = time.process_time()
            for batch in batches:
                bundle.exclusions(bundle.users.to_index(batch), side(batch))
            cpu[name].append((time.process_time() - started) / len(drawn) * 1e6)
    b, a = (statistics.median(cpu[n]) for n in sides)
    print(
        f"batch {args.batch}: CPU µs per request (read, id lookups, exclusion rows), median of "
        f"{args.rounds} rounds x {len(drawn)} requests: before {b:.1f}  after {a:.1f}  "
        f"saved {b - a:.1f}  ratio {a / b:.3f}"
    )
    print("  range over rounds:", {n: f"{min(v):.1f}-{max(v):.1f}" for n, v in cpu.items()})
    store.close()


if __name__ == "__main__":
    main()
