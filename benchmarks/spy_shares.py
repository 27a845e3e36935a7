"""Shares of a ``route_ab.py`` process's py-spy samples, per side: which part of each side's CPU
went through the named functions (``solve_dependencies``: FastAPI's per-request solve).

``route_ab.py`` serves both checkouts in one process, the other one as ``recsmith_base``, so a
sample belongs to the side whose package is on its stack (the app's middleware always is, and a
``def`` endpoint's thread-pool stack holds the endpoint); samples with neither (the event loop
idle, the load driver) are counted apart. Record with raw (collapsed) stacks, then:

    py-spy record --pid PID --rate 200 --duration 60 --format raw --output /tmp/ab.txt
    python benchmarks/spy_shares.py /tmp/ab.txt solve_dependencies serialize_response
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path


def side_of(stack: str) -> str:
    """``against`` (``recsmith_base``), ``this`` (``recsmith``) or ``neither``."""
    if "recsmith_base/" in stack:
        return "against"
    return "this" if "recsmith/" in stack else "neither"


def shares(lines: list[str], names: list[str]) -> tuple[Counter[str], dict[str, Counter[str]]]:
    """Samples per side, and per name the samples per side whose stack has a frame of it."""
    total: Counter[str] = Counter()
    hits: dict[str, Counter[str]] = {name: Counter() for name in names}
    for line in lines:
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        side = side_of(stack)
        total[side] += int(count)
        frames = [frame.split(" (")[0] for frame in stack.split(";")]
        for name in names:
            if name in frames:
                hits[name][side] += int(count)
    return total, hits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("raw", type=Path, help="py-spy record --format raw output")
    parser.add_argument("names", nargs="+", help="function names to count")
    args = parser.parse_args()
    total, hits = shares(args.raw.read_text().splitlines(), args.names)
    print("samples:", dict(total))
    for name, counts in hits.items():
        cells = [f"{side} {100 * counts[side] / n:.1f} %" for side, n in total.items() if n]
        print(f"{name}: " + ", ".join(cells))


if __name__ == "__main__":
    main()
