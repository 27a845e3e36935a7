"""CPU of the fairness watch's catalogue read per refresh: main's whole read (``store.items()``
and the first-category map built from it) against ``CatalogueGroups.update`` (only what changed
since the last refresh), alternating on one SQLite store of ``--items`` items, with ``--changed``
items rewritten before each refresh.

    .venv/bin/python benchmarks/fairness_catalogue_cost.py --items 100000 --changed 100
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from calibration import calibration_line

from recsmith.events.schema import Item
from recsmith.fairness.watch import CatalogueGroups
from recsmith.store.sqlite import SQLiteStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--changed", type=int, default=100, help="items rewritten per refresh")
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    print(calibration_line(), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "events.db")
        store.upsert_items(
            [Item(item_id=f"i{k}", categories=[f"c{k % 50}"]) for k in range(args.items)]
        )
        groups = CatalogueGroups(store)
        groups.update()
        whole, changed = [], []
        for r in range(args.rounds):
            store.upsert_items(
                [
                    Item(item_id=f"i{(r * args.changed + k) % args.items}", categories=[f"c{r}"])
                    for k in range(args.changed)
                ]
            )
            started = time.process_time()
            catalogue = store.items()
            first = {it.item_id: it.categories[0] for it in catalogue if it.categories}
            whole.append(time.process_time() - started)
            started = time.process_time()
            groups.update()
            changed.append(time.process_time() - started)
            assert groups.first == first and groups.size == len(catalogue)
        print(
            f"{args.items} items, {args.changed} rewritten a refresh, median CPU over "
            f"{args.rounds} refreshes: whole read {statistics.median(whole) * 1e3:.1f} ms, "
            f"changes only {statistics.median(changed) * 1e3:.2f} ms; maps equal every refresh"
        )


if __name__ == "__main__":
    main()
