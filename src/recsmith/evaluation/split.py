"""Leak-free train/test splits of a canonical event frame, and validation splits carved from train.

Offline evaluation is only honest when nothing the model is scored on could have been seen while it
was trained. ``temporal``, ``leave-last-out`` and ``user-holdout`` guarantee that by construction;
``random`` does not (future events can reach train) and exists to compare with published numbers.
Every split is vectorised (factorize, lexsort, boolean masks) because event frames hold millions of
rows, and actors are grouped by ``recsmith.features.interactions.actor_keys`` so that a split groups
events exactly as the interaction matrix the model trains on does.

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
from recsmith.features.interactions import actor_keys

DEFAULT_QUANTILE = 0.9
DEFAULT_HOLDOUT = 1
DEFAULT_FRACTION = 0.2
DEFAULT_FOLD_IN = 0.8
#: Mixed into a spec's seed so a validation split draws independently of the test split.
_VALIDATION_STREAM = 0x5EED_7A11

SplitKind = Literal["temporal", "leave-last-out", "random", "user-holdout"]


@dataclass(frozen=True, slots=True)
class Split:
    """A train/test pair of event frames and the spec that made it (e.g. ``temporal:0.9``)."""

    train: pd.DataFrame
    test: pd.DataFrame
    name: str


def _take(events: pd.DataFrame, mask: np.ndarray, name: str) -> Split:
    return Split(train=events[~mask].copy(), test=events[mask].copy(), name=name)


def _actor_codes(events: pd.DataFrame) -> np.ndarray:
    """Dense int code per event's actor, -1 for an event with neither user nor session id.

    Actors are numbered in key order, so a seeded draw over actors does not depend on the row
    order of the frame. Validated frames never hold actor-less rows; they stay in train.
    """
    codes, _ = pd.factorize(actor_keys(events), sort=True)
    codes = codes.astype(np.int64)
    if "session_id" in events.columns:  # without it, actor_keys needed a user on every event
        no_actor = events["user_id"].isna().to_numpy() & events["session_id"].isna().to_numpy()
        codes[no_actor] = -1
    return codes


def temporal_split(events: pd.DataFrame, quantile: float = DEFAULT_QUANTILE) -> Split:
    """Global time cut at the ``quantile`` of ``ts``: train is ``ts < cut``, test is ``ts >= cut``.

    The cut is an actual event time (``method="higher"``), so the test side is never empty when
    there are events, and every event at the cut itself goes to test: nothing at or after the cut
    can reach train, which is what makes the split leak-free for models that learn from time.
    """
    _check_unit(quantile, "quantile")
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
    key stay in train as well. The last events go to test whatever they weigh: a last rating of 0
    or below is no truth (``runner.ground_truth``), so with ``n`` = 1 that actor is not scored, as
    calibration's latest-item fold holds out a user's latest event and scores no such user
    (``source_tuning.holdout_at``) rather than the positive one before it."""
    _check_holdout(n)
    mask = np.zeros(len(events), dtype=bool)
    actor = _actor_codes(events)
    if not (actor >= 0).any():
        return _take(events, mask, _leave_last_out_name(n))
    # factorize(sort=True) turns ids into ranks, so lexsort on ints orders them like the strings.
    event_rank, _ = pd.factorize(events["event_id"].to_numpy(), sort=True)
    ts = events["ts"].to_numpy()
    order = np.lexsort((event_rank, ts, actor))  # last key is primary: actor, then ts, event_id
    order = order[actor[order] >= 0]
    sorted_actor = actor[order]
    counts = np.bincount(sorted_actor)
    group_end = np.cumsum(counts)[sorted_actor]  # one past each row's last group member
    from_end = group_end - 1 - np.arange(len(order))  # 0 = actor's last event
    held_out = (from_end < n) & (counts[sorted_actor] > n)
    mask[order[held_out]] = True
    return _take(events, mask, _leave_last_out_name(n))


def random_holdout(
    events: pd.DataFrame, fraction: float = DEFAULT_FRACTION, seed: int = 0
) -> Split:
    """Each event goes to test independently with probability ``fraction`` (seeded).

    Not leak-free in time: a user's later events can train a model scored on earlier ones. It is
    here because much of the literature reports random splits. Draws are assigned in
    ``(event_id, ts)`` order, so the same events and seed give the same split whatever the row
    order of the frame.
    """
    _check_unit(fraction, "fraction")
    n = len(events)
    event_rank, _ = pd.factorize(events["event_id"].to_numpy(), sort=True)
    order = np.lexsort((events["ts"].to_numpy(), event_rank))
    draws = np.empty(n)  # float64
    draws[order] = np.random.default_rng(seed).random(n)
    return _take(events, draws < fraction, _fraction_name("random", fraction))


def user_holdout(
    events: pd.DataFrame,
    fraction: float = DEFAULT_FRACTION,
    seed: int = 0,
    fold_in: float = DEFAULT_FOLD_IN,
) -> Split:
    """Strong generalisation: ``round(fraction * n_actors)`` seeded random actors are held out.

    Every event of the other actors goes to train. A held-out actor's first ``fold_in`` share of
    events by time (``floor(fold_in * count)``, at least one, at most ``count - 1``) also goes to
    train as fold-in history, so a model can fold the actor in at recommendation time; the rest is
    test. The boundary is a time: events tied with the first test event go to test too (as in
    ``temporal_split``), so every test event of an actor is strictly later than all of their train
    events. A held-out actor whose events cannot give both (a single event, or all at one time)
    stays in train.
    """
    _check_unit(fraction, "fraction")
    _check_unit(fold_in, "fold-in share")
    name = _fraction_name("user-holdout", fraction)
    actor = _actor_codes(events)
    if not (actor >= 0).any():  # no event, or none with an actor
        return _take(events, np.zeros(len(events), dtype=bool), name)
    n_actors = int(actor.max()) + 1
    held = np.zeros(n_actors, dtype=bool)
    held[np.random.default_rng(seed).permutation(n_actors)[: round(fraction * n_actors)]] = True
    ts = events["ts"].to_numpy()
    order = np.lexsort((ts, actor))
    order = order[actor[order] >= 0]
    counts = np.bincount(actor[order])  # every code in 0..n_actors-1 has an event: all > 0
    starts = np.cumsum(counts) - counts
    n_fold = np.clip(np.floor(fold_in * counts + 1e-9).astype(np.int64), 1, None)
    eligible = held & (counts >= 2)
    n_fold = np.minimum(n_fold, counts - 1)
    sorted_ts = ts[order]
    cut_ts = np.zeros(n_actors, dtype=ts.dtype)
    cut_ts[eligible] = sorted_ts[starts[eligible] + n_fold[eligible]]
    eligible &= cut_ts > sorted_ts[starts]  # a test event strictly after the actor's first
    code = np.maximum(actor, 0)
    mask = (actor >= 0) & eligible[code] & (ts >= cut_ts[code])
    return _take(events, mask, name)


@dataclass(frozen=True, slots=True)
class SplitSpec:
    """A parsed split spec from the CLI; ``apply`` runs it on an event frame."""

    kind: SplitKind
    quantile: float = DEFAULT_QUANTILE
    n: int = DEFAULT_HOLDOUT
    fraction: float = DEFAULT_FRACTION
    seed: int = 0

    @property
    def name(self) -> str:
        if self.kind == "temporal":
            return _temporal_name(self.quantile)
        if self.kind == "leave-last-out":
            return _leave_last_out_name(self.n)
        return _fraction_name(self.kind, self.fraction)

    def apply(self, events: pd.DataFrame, seed: int | None = None) -> Split:
        """Split ``events``; ``seed`` overrides the spec's own (``validation_split`` uses it)."""
        seed = self.seed if seed is None else seed
        if self.kind == "temporal":
            return temporal_split(events, self.quantile)
        if self.kind == "leave-last-out":
            return leave_last_out(events, self.n)
        if self.kind == "random":
            return random_holdout(events, self.fraction, seed)
        return user_holdout(events, self.fraction, seed)


def validation_split(train: pd.DataFrame, spec: SplitSpec) -> Split:
    """Carve a validation split out of a split's TRAIN part by the same rule as ``spec``.

    Tuning on this never looks at the test part: temporal cuts train at the same quantile,
    leave-last-out holds out each actor's last ``n`` train events, and the seeded splits use the
    same fraction with a seed derived from the spec's, so validation and test draws are unrelated.
    """
    derived = int(np.random.SeedSequence([spec.seed, _VALIDATION_STREAM]).generate_state(1)[0])
    parts = spec.apply(train, seed=derived)
    return Split(parts.train, parts.test, f"validation:{parts.name}")


def parse_split(spec: str, field: str = "split") -> SplitSpec:
    """Parse ``temporal[:QUANTILE]``, ``leave-last-out[:N]``, ``random[:FRACTION]`` or
    ``user-holdout[:FRACTION]``; errors name ``field`` (the CLI passes its option, ``--split``,
    so that whoever typed it reads which option to fix).

    The quantile and fractions must lie strictly inside (0, 1) (an end would leave a side empty),
    and N must be a positive integer.
    """
    try:
        return _parse_split(spec)
    except ValidationError as exc:
        if field == exc.field:
            raise
        raise ValidationError(field, exc.reason) from None


def _parse_split(spec: str) -> SplitSpec:
    if not isinstance(spec, str):
        raise ValidationError("split", f"expected a string such as 'temporal:0.9', got {spec!r}")
    kind, sep, arg = spec.strip().lower().partition(":")
    arg = arg.strip()
    if sep and not arg:
        raise ValidationError("split", f"missing value after ':' in {spec!r}")
    parsers: dict[str, Callable[[str], SplitSpec]] = {
        "temporal": _parse_temporal,
        "leave-last-out": _parse_leave_last_out,
        "random": lambda a: _parse_fraction("random", a),
        "user-holdout": lambda a: _parse_fraction("user-holdout", a),
    }
    parser = parsers.get(kind.strip())
    if parser is None:
        raise ValidationError(
            "split",
            f"unknown split {spec!r}; expected 'temporal[:QUANTILE]', 'leave-last-out[:N]', "
            "'random[:FRACTION]' or 'user-holdout[:FRACTION]'",
        )
    return parser(arg)


def _parse_number(arg: str, what: str) -> float:
    try:
        return float(arg)
    except ValueError:
        raise ValidationError("split", f"{what} {arg!r} is not a number") from None


def _parse_temporal(arg: str) -> SplitSpec:
    if not arg:
        return SplitSpec("temporal")
    quantile = _parse_number(arg, "temporal quantile")
    _check_unit(quantile, "quantile")
    return SplitSpec("temporal", quantile=quantile)


def _parse_leave_last_out(arg: str) -> SplitSpec:
    if not arg:
        return SplitSpec("leave-last-out")
    if not (arg.isascii() and arg.isdigit()):
        raise ValidationError("split", f"leave-last-out count {arg!r} is not a positive integer")
    n = int(arg)
    _check_holdout(n)
    return SplitSpec("leave-last-out", n=n)


def _parse_fraction(kind: Literal["random", "user-holdout"], arg: str) -> SplitSpec:
    if not arg:
        return SplitSpec(kind)
    fraction = _parse_number(arg, f"{kind} fraction")
    _check_unit(fraction, "fraction")
    return SplitSpec(kind, fraction=fraction)


def _check_unit(value: float, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError("split", f"{what} must be a number, got {value!r}")
    if not (math.isfinite(value) and 0.0 < value < 1.0):
        raise ValidationError("split", f"{what} must be in (0, 1), got {value!r}")


def _check_holdout(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValidationError("split", f"leave-last-out count must be an integer >= 1, got {n!r}")


def _temporal_name(quantile: float) -> str:
    return f"temporal:{quantile:g}"


def _leave_last_out_name(n: int) -> str:
    return f"leave-last-out:{n}"


def _fraction_name(kind: str, fraction: float) -> str:
    return f"{kind}:{fraction:g}"
