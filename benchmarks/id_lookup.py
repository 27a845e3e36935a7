"""``IdMap.to_index`` on a release's mapped ids, this checkout against another, in one process.

What a served batch asks of the maps: ~30 item ids a user (``ModelBundle.item_pairs``, the
exclusions) and the batch's user ids (``Pipeline.queries``). Both checkouts open the same
release's mapped ids and answer the same batches alternately (order flipped every call); CPU
time per call, medians and the spread of the middle half. Then the table's build time at load
for synthetic ids of 100k and 1M (the first lookup in each worker pays it).

    .venv/bin/python benchmarks/id_lookup.py /tmp/large/model --against /tmp/main/src
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from answer_ab import renamed_copy
from calibration import calibration_line

ITEMS_PER_USER = 30


def cpu_per_call(look, batches: list[list[str]]) -> list[float]:
    """Process CPU microseconds of ``look(batch)`` for each batch."""
    out = []
    for batch in batches:
        t = time.process_time()
        look(batch)
        out.append((time.process_time() - t) * 1e6)
    return out


def spread(values: list[float]) -> str:
    """Median [p25-p75] of microseconds."""
    q = statistics.quantiles(values, n=4)
    return f"{statistics.median(values):.0f} [{q[0]:.0f}-{q[2]:.0f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--against", type=Path, required=True, help="the other checkout's src")
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    print(calibration_line(), flush=True)
    tmp = tempfile.mkdtemp()
    renamed_copy(args.against, Path(tmp))
    sys.path.insert(0, tmp)
    from recsmith_base.bundle import read_ids as base_read_ids

    from recsmith.bundle import read_ids
    from recsmith.id_table import IdTable

    (users, items), (base_users, base_items) = (
        read_ids(args.model_dir),
        base_read_ids(args.model_dir),
    )
    rng = np.random.default_rng(0)
    user_ids, item_ids = users.to_array(), items.to_array()
    t = time.perf_counter()
    items.to_index(item_ids[:1].tolist())  # the first lookup builds the table
    users.to_index(user_ids[:1].tolist())
    print(f"first lookup (build) of this release's maps: {(time.perf_counter() - t) * 1e3:.1f} ms")
    print("| users a batch | ids | this checkout, µs CPU | start, µs CPU | ratio |")
    print("|---|---|---|---|---|")
    for n_users in (1, 16, 64):
        for kind, mine, base, pool, per in (
            ("items", items, base_items, item_ids, ITEMS_PER_USER),
            ("users", users, base_users, user_ids, 1),
        ):
            size = n_users * per
            batches = [pool[rng.integers(0, len(pool), size)].tolist() for _ in range(args.calls)]
            assert all((mine.to_index(b) == base.to_index(b)).all() for b in batches[:50])
            a, b = [], []
            for i in range(0, args.calls, 10):
                chunk = batches[i : i + 10]
                first, second = (mine, base) if i % 20 else (base, mine)
                x = cpu_per_call(first.to_index, chunk)
                y = cpu_per_call(second.to_index, chunk)
                (a, b)[first is base].extend(x)
                (a, b)[second is base].extend(y)
            ratio = statistics.median(a) / statistics.median(b)
            print(f"| {n_users} | {size} {kind} | {spread(a)} | {spread(b)} | {ratio:.2f} |")
    print("| ids | table build at load, ms (3 runs) |")
    print("|---|---|")
    for n in (100_000, 1_000_000):
        ids = np.char.add("item", rng.permutation(n).astype(str)).astype("<U12")
        runs = []
        for _ in range(3):
            t = time.perf_counter()
            IdTable(ids)
            runs.append(f"{(time.perf_counter() - t) * 1e3:.0f}")
        print(f"| {n:,} (U12) | {', '.join(runs)} |")


if __name__ == "__main__":
    main()
