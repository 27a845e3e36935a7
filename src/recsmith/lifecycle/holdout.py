"""The newest events, which neither the current release nor the candidate has learnt from.

The current release was trained on events up to its ``data_profile.last_ts_us``; a holdout that
starts after that instant is unseen by it, and the candidate is trained only on what comes before
the holdout, so both are judged on the same future. The holdout is the last ``fraction`` of the
events by time, moved later if needed to start after the current release's training data: the
candidate then has more recent data than the current release, which is what a retrain offers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsmith.errors import RecsmithError, ValidationError

DEFAULT_FRACTION = 0.1


@dataclass(frozen=True)
class Holdout:
    train: pd.DataFrame
    test: pd.DataFrame
    start_us: int  # the first instant of the holdout: train is ts < start_us


def newest_holdout(events: pd.DataFrame, fraction: float, current_until_us: int | None) -> Holdout:
    """Train = events before the cut, test = from it on (see module docstring)."""
    if not 0 < fraction < 1:
        raise ValidationError("--holdout", f"must be between 0 and 1 (exclusive), got {fraction}")
    ts = events["ts"].to_numpy(dtype=np.int64)
    if len(ts) == 0:
        raise ValidationError("--store", "no events to retrain on")
    start = int(np.quantile(ts, 1 - fraction, method="higher"))
    if current_until_us is not None:
        start = max(start, current_until_us + 1)
    test = ts >= start
    if not test.any():
        raise RecsmithError(
            "no events after the current release's training data: nothing new to retrain on "
            "or to judge a retrain with"
        )
    if test.all():  # one timestamp, or a handful of events: the interaction matrix would refuse it
        raise ValidationError(
            "--holdout",
            f"all {len(ts):,} events fall in the newest holdout: none before it to train on",
        )
    return Holdout(events[~test], events[test], start)
