"""How long ``simulate()`` at its default size takes (the quickstart's data): best of 5 runs.

    PYTHONPATH=src python benchmarks/simulate_default.py

The unit test checks only the size of the data; the speed goal (under 2 s) is checked here.
"""

from __future__ import annotations

import timeit

from recsmith.simulate import simulate


def main() -> None:
    simulate(n_users=20, n_items=50)  # warm imports and caches
    best = min(timeit.repeat(simulate, number=1, repeat=5))
    events = len(simulate().events)
    print(f"simulate(): {events:,} events, best of 5: {best:.2f} s (goal < 2 s)")


if __name__ == "__main__":
    main()
