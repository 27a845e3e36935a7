"""What a release was trained on, recorded in its manifest so drift can be judged later.

The store keeps changing after training (new events, erasures, retention purges), so the training
window cannot be re-read from it faithfully; a few numbers are written beside the model instead.
Item popularity is not copied here: the release's ``seen/`` arrays already hold who interacted with
what, and ``monitoring.signals`` reads them from there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

#: Manifest key of the profile.
KEY = "data_profile"


def data_profile(events: pd.DataFrame) -> dict[str, Any]:
    """Counts by event type and the time span of the training events (µs since the epoch)."""
    if events.empty:
        return {"n_events": 0, "first_ts_us": None, "last_ts_us": None, "event_types": {}}
    counts = events["event_type"].value_counts()
    return profile_of(counts.to_dict(), int(events["ts"].min()), int(events["ts"].max()))


def profile_of(type_counts: Mapping[Any, int], first_ts_us: int, last_ts_us: int) -> dict[str, Any]:
    """``data_profile`` from counts already made (by Spark SQL in ``recsmith.spark``)."""
    return {
        "n_events": int(sum(type_counts.values())),
        "first_ts_us": int(first_ts_us),
        "last_ts_us": int(last_ts_us),
        # by name: value_counts orders equal counts by first appearance, i.e. by row order
        "event_types": {
            str(k): int(v) for k, v in sorted(type_counts.items(), key=lambda kv: str(kv[0]))
        },
    }
