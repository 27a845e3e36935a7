"""The ranker's request-level features as a contextual bandit's context (``[contextual]
ranker_features = true``).

The ranker scores (user, item) candidates; a bandit choosing among a few lists has no item yet,
so what it can share with the ranker are the columns of ``ranking.features.candidate_features``
that belong to the request and the user: the device and the day of week, coded by the ranker's own
``ranking.context.context_columns`` (so the two never disagree on what "mobile" or "Monday" is),
and the user's training events from the ranker's ``FeatureState``. They are appended to
``linear.context_vector``'s columns, shaped for a linear model: the device one-hot (all zero when
the request names none), the weekday on the circle, and log(1 + events) (0 for a visitor or a user
newer than the release).
"""

from __future__ import annotations

import numpy as np

from recsmith.ranking.context import DEVICES, context_columns
from recsmith.ranking.features import FeatureState

#: The appended columns, in order (device code 0 is a device the ranker does not list).
RANKER_CONTEXT_NAMES = (
    "device_other",
    *(f"device_{name}" for name in DEVICES),
    "weekday_sin",
    "weekday_cos",
    "log1p_user_events",
)


def ranker_context(
    state: FeatureState, user: int, device: str | None, moment_us: int
) -> np.ndarray:
    """[len(RANKER_CONTEXT_NAMES)] for one request: ``user`` the release's user index (-1:
    unknown), ``device`` as the request gave it, ``moment_us`` the request's time."""
    coded = context_columns(np.array([moment_us]), [{} if device is None else {"device": device}])
    onehot = np.zeros(1 + len(DEVICES))
    if not np.isnan(coded[0, 2]):
        onehot[int(coded[0, 2])] = 1.0
    angle = 2 * np.pi * float(coded[0, 1]) / 7
    events = float(state.user_events[user]) if 0 <= user < len(state.user_events) else 0.0
    return np.concatenate([onehot, [np.sin(angle), np.cos(angle), np.log1p(events)]])
