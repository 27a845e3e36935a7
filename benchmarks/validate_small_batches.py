"""Fixed cost of ``validate_events`` on 1, 16 and 1,000 records (ms per call, timeit medians).

Browsers and mobile SDKs send one event per request, so the per-call overhead is what bounds
single-event ingest. Compare two trees in the same run, e.g.::

    for p in /tmp/before/src src; do PYTHONPATH=$p python benchmarks/validate_small_batches.py; done

Each batch mixes views and ratings, Unix and ISO 8601 timestamps, and a context on every fifth
event; ``iso=1`` rows use ISO text for every timestamp (what a browser sends).
"""

from __future__ import annotations

import statistics
import timeit
from typing import Any

from calibration import calibration_line

from recsmith.config import EventSettings
from recsmith.events.validate import validate_events

SETTINGS = EventSettings()
NOW = 1_704_067_200.0
CALLS = {1: 200, 16: 100, 1000: 10}


def batch(n: int, iso: bool) -> list[dict[str, Any]]:
    return [
        {
            "event_id": f"e{i}",
            "user_id": f"u{i % 50}",
            "item_id": f"i{i % 300}",
            "event_type": "view" if i % 3 else "rating",
            "value": None if i % 3 else 4.0,
            "timestamp": "2023-06-01T12:00:00Z" if iso or i % 2 else 1_685_620_800 + i,
            **({"context": {"page": "home"}} if i % 5 == 0 else {}),
        }
        for i in range(n)
    ]


def main() -> None:
    print(calibration_line(), flush=True)
    for n, number in CALLS.items():
        for iso in (False, True):
            records = batch(n, iso)
            validate_events(records, SETTINGS, now=NOW)  # warm-up
            runs = timeit.repeat(
                lambda r=records: validate_events(r, SETTINGS, now=NOW), number=number, repeat=7
            )
            ms = statistics.median(runs) / number * 1000
            print(f"n={n:5d} iso={iso:d}  {ms:.3f} ms/call (best {min(runs) / number * 1000:.3f})")


if __name__ == "__main__":
    main()
