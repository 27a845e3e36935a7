"""The recommendation route's store read, ``SQLiteStore.user_items``, two ways on one store: the
old ``SELECT DISTINCT item_id`` with a Python step per row, and the one-row
``json_group_array(DISTINCT item_id)`` decoded by ``json.loads`` (BENCHMARKS §98). The same
random users each round, the order of the two flipped every round, thread CPU µs per read;
the answers of both are first checked equal, order included. The one-row side is the store's
own method (its outage guard and connection look-up included), the row side the bare query.

    PYTHONPATH=src .venv/bin/python benchmarks/user_items_read.py /tmp/large --rounds 10
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
from calibration import calibration_line

from recsmith.store.sqlite import SQLiteStore

ROWS = "SELECT DISTINCT item_id FROM events WHERE user_id = ?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shop", type=Path, help="a serve_load.py --workdir: store, users")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--users", type=int, default=2000, help="reads per round and side")
    args = parser.parse_args()
    print(calibration_line(), flush=True)
    store = SQLiteStore(args.shop / "store.sqlite")
    users = list(
        np.random.default_rng(0).choice((args.shop / "users.txt").read_text().split(), args.users)
    )
    conn = store._conn()

    def rows(user: str) -> list[str]:
        return [r[0] for r in conn.execute(ROWS, (user,))]

    def one_row(user: str) -> list[str]:
        return store.user_items(user)

    assert all(rows(u) == one_row(u) for u in users), "the two reads answer differently"
    lengths = [len(rows(u)) for u in users]
    print(f"{len(users)} users, {statistics.mean(lengths):.1f} items each on average", flush=True)
    spent: dict[str, list[float]] = {"rows": [], "one_row": []}
    for r in range(args.rounds):
        for name, read in [("rows", rows), ("one_row", one_row)][:: 1 if r % 2 == 0 else -1]:
            started = time.thread_time()
            for user in users:
                read(user)
            spent[name].append((time.thread_time() - started) / len(users) * 1e6)
    before, after = (statistics.median(spent[n]) for n in ("rows", "one_row"))
    print(
        f"thread CPU µs per read, median of {args.rounds} rounds: rows {before:.1f}  "
        f"one_row {after:.1f}  ratio {after / before:.3f}"
    )
    print({n: f"{min(v):.1f}-{max(v):.1f}" for n, v in spent.items()})
    store.close()


if __name__ == "__main__":
    main()
