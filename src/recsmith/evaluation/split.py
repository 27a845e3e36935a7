"""Leak-free train/test splits of a canonical event frame.

Offline evaluation is only honest when nothing the model is scored on could have been seen while it
was trained. Both splits here guarantee that by construction, and both are vectorised (factorize,
lexsort, boolean masks) because event frames hold millions of rows.

Rows keep their original index in ``train`` and ``test`` so a result can be traced back to its
event.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from recsmith.errors import ValidationError
from recsmith.features.interactions import SESSION_PREFIX

DEFAULT_QUANTILE = 0.9
DEFAULT_HOLDOUT = 1


@dataclass(frozen=True, slots=True)
class Split:
    """A train/test pair of event frames and the spec that made it (e.g. ``temporal:0.9``)."""

    train: pd.DataFrame
    test: pd.DataFrame
    name: str


def _present(values: np.ndarray) -> np.ndarray:
    """True where an id is usable: neither missing (None/NaN/NA) nor the empty string."""
    missing = pd.isna(values)
    return ~(missing | (np.where(missing, None, values) == ""))


def actor_keys(frame: pd.DataFrame) -> pd.Series:
    """Who acted, per event: ``user_id``, or ``session:<session_id>`` for anonymous visitors.

    Anonymous sessions are real actors for next-item evaluation, so they are kept rather than
    dropped. The prefix (``SESSION_PREFIX``, shared with ``recsmith.features.interactions``) keeps a
    session apart from a user with the same id, and makes the split group events exactly as the
    interaction matrix does. An empty ``user_id`` counts as missing; events with neither id get None
    (validated frames never contain such rows).
    """
    n = len(frame)
    users = frame["user_id"].to_numpy(dtype=object)
    sessions = (
        frame["session_id"].to_numpy(dtype=object)
        if "session_id" in frame.columns
        else np.full(n, None, dtype=object)
    )
    has_session = _present(sessions)
    sessions = np.where(has_session, SESSION_PREFIX + sessions.astype(str), None)
    keys = np.where(_present(users), users, sessions)
    return pd.Series(keys, index=frame.index, name="actor", dtype=object)


def _take(events: pd.DataFrame, mask: np.ndarray, name: str) -> Split:
    return Split(train=events[~mask].copy(), test=events[mask].copy(), name=name)


def temporal_split(events: pd.DataFrame, quantile: float = DEFAULT_QUANTILE) -> Split:
    """Global time cut at the ``quantile`` of ``ts``: train is ``ts < cut``, test is ``ts >= cut``.

    The cut is an actual event time (``method="higher"``), so the test side is never empty when
    there are events, and every event at the cut itself goes to test: nothing at or after the cut
    can reach train, which is what makes the split leak-free for models that learn from time.
    """
    _check_quantile(quantile)
    ts = events["ts"].to_numpy()
    if len(ts) == 0:
        return _take(events, np.zeros(0, dtype=bool), _temporal_name(quantile))
    cut = np.quantile(ts, quantile, method="higher")
    return _take(events, ts >= cut, _temporal_name(quantile))


def leave_last_out(events: pd.DataFrame, n: int = DEFAULT_HOLDOUT) -> Split:
    """Per actor (see ``actor_keys``), the ``n`` last events by ``(ts, event_id)`` go to test.

    ``event_id`` breaks ties in ``ts`` so the split is deterministic whatever the input row order.
    Actors with ``n`` events or fewer stay entirely in train: with nothing left to learn from they
    could only be scored by a fallback, which is not what this split measures. Events with no actor
    key stay in train as well.
    """
    _check_holdout(n)
    size = len(events)
    mask = np.zeros(size, dtype=bool)
    if size == 0:
        return _take(events, mask, _leave_last_out_name(n))
    actor, _ = pd.factorize(actor_keys(events).to_numpy(), use_na_sentinel=True)
    # factorize(sort=True) turns ids into ranks, so lexsort on ints orders them like the strings.
    event_rank, _ = pd.factorize(events["event_id"].to_numpy(dtype=object), sort=True)
    ts = events["ts"].to_numpy()
    order = np.lexsort((event_rank, ts, actor))  # last key is primary: actor, then ts, event_id
    sorted_actor = actor[order]
    keep = sorted_actor >= 0
    order, sorted_actor = order[keep], sorted_actor[keep]
    if len(order) == 0:
        return _take(events, mask, _leave_last_out_name(n))
    counts = np.bincount(sorted_actor)
    group_end = np.cumsum(counts)[sorted_actor]  # one past each row's last group member
    from_end = group_end - 1 - np.arange(len(order))  # 0 = actor's last event
    held_out = (from_end < n) & (counts[sorted_actor] > n)
    mask[order[held_out]] = True
    return _take(events, mask, _leave_last_out_name(n))


@dataclass(frozen=True, slots=True)
class SplitSpec:
    """A parsed split spec from the CLI; ``apply`` runs it on an event frame."""

    kind: Literal["temporal", "leave-last-out"]
    quantile: float = DEFAULT_QUANTILE
    n: int = DEFAULT_HOLDOUT

    @property
    def name(self) -> str:
        if self.kind == "temporal":
            return _temporal_name(self.quantile)
        return _leave_last_out_name(self.n)

    def apply(self, events: pd.DataFrame) -> Split:
        if self.kind == "temporal":
            return temporal_split(events, self.quantile)
        return leave_last_out(events, self.n)


def parse_split(spec: str) -> SplitSpec:
    """Parse ``temporal[:QUANTILE]`` or ``leave-last-out[:N]``; errors name the field ``split``.

    The quantile must lie strictly inside (0, 1) (0 would leave train empty, 1 test), and N must be
    a positive integer.
    """
    if not isinstance(spec, str):
        raise ValidationError("split", f"expected a string such as 'temporal:0.9', got {spec!r}")
    kind, sep, arg = spec.strip().lower().partition(":")
    arg = arg.strip()
    if sep and not arg:
        raise ValidationError("split", f"missing value after ':' in {spec!r}")
    parsers: dict[str, Callable[[str], SplitSpec]] = {
        "temporal": _parse_temporal,
        "leave-last-out": _parse_leave_last_out,
    }
    parser = parsers.get(kind.strip())
    if parser is None:
        raise ValidationError(
            "split",
            f"unknown split {spec!r}; expected 'temporal[:QUANTILE]' or 'leave-last-out[:N]'",
        )
    return parser(arg)


def _parse_temporal(arg: str) -> SplitSpec:
    if not arg:
        return SplitSpec("temporal")
    try:
        quantile = float(arg)
    except ValueError:
        raise ValidationError("split", f"temporal quantile {arg!r} is not a number") from None
    _check_quantile(quantile)
    return SplitSpec("temporal", quantile=quantile)


def _parse_leave_last_out(arg: str) -> SplitSpec:
    if not arg:
        return SplitSpec("leave-last-out")
    if not (arg.isascii() and arg.isdigit()):
        raise ValidationError("split", f"leave-last-out count {arg!r} is not a positive integer")
    n = int(arg)
    _check_holdout(n)
    return SplitSpec("leave-last-out", n=n)


def _check_quantile(quantile: float) -> None:
    if isinstance(quantile, bool) or not isinstance(quantile, int | float):
        raise ValidationError("split", f"quantile must be a number, got {quantile!r}")
    if not (math.isfinite(quantile) and 0.0 < quantile < 1.0):
        raise ValidationError("split", f"quantile must be in (0, 1), got {quantile!r}")


def _check_holdout(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValidationError("split", f"leave-last-out count must be an integer >= 1, got {n!r}")


def _temporal_name(quantile: float) -> str:
    return f"temporal:{quantile:g}"


def _leave_last_out_name(n: int) -> str:
    return f"leave-last-out:{n}"
