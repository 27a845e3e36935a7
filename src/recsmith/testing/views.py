"""Interactions of plain (user, item) views, for tests that need real training data of a shape
they draw by hand: one ``view`` event a pair, in the pairs' order, a microsecond apart."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from recsmith.config import EventSettings
from recsmith.features.interactions import Interactions


def views(pairs: Sequence[tuple[str, str]]) -> Interactions:
    """``pairs`` as view events with the default event weights."""
    frame = pd.DataFrame(list(pairs), columns=["user_id", "item_id"])
    return Interactions.from_events(
        frame.assign(
            event_id=[f"e{n}" for n in range(len(frame))],
            event_type="view",
            session_id=None,
            value=np.nan,
            context=None,
            ts=(1_700_000_000 + np.arange(len(frame))) * 1_000_000,
        ),
        EventSettings().weights,
    )
