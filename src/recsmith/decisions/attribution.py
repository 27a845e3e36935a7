"""Which served list an event is the outcome of: the two attribution rules.

- ``explicit``: the event names a ``recommendation_id`` (and maybe a ``position``). The id must be
  one the log knows (stored, or still in this process's buffer), the event's item must be one of
  that list's items, and a position must be where the list showed it; otherwise the event is
  refused with a field error naming what is wrong, its valid neighbours kept. An id only another
  worker or replica has issued may not be stored yet (its writer flushes every
  ``flush_interval_s``), so ids not found are looked up once more after that long before being
  refused (``wait_unknown_s``; one wait per batch, only when some id is unknown).
- ``window``: an event without an id, of a type mapped to an outcome (``[decisions] clicks``,
  ``carts``, ``purchases``), on an item shown to the same unit (the event's ``user_id``, else its
  ``session_id``) at most ``attribution_window_h`` before the event, goes to the latest list that
  showed it. A list served after the event never gets it.

Attributions are stored (``attributions``, idempotent on ``event_id``) so that outcomes and KPIs
read them instead of re-deriving them from a window that retention may have cut.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from recsmith.config import DecisionSettings
from recsmith.decisions.log import DecisionLog
from recsmith.decisions.record import Decision
from recsmith.decisions.rows import ATTRIBUTION_COLUMNS, LOOKUP_COLUMNS, lookup_rows
from recsmith.events.schema import EVENT_COLUMNS, FieldError
from recsmith.store.base import EventStore, ids_in

HOUR_US = 3_600_000_000
_LIST, _TYPE = EVENT_COLUMNS.index("recommendation_id"), EVENT_COLUMNS.index("event_type")


@dataclass(frozen=True, slots=True)
class Refusals:
    """Rows (of the checked frame) refused, each with its field error, and the lists the
    frame's ids named (handed to ``attribute``: one lookup, one wait at most, per batch)."""

    rows: np.ndarray
    errors: tuple[FieldError, ...]
    shown: pd.DataFrame


class Attributor:
    """Checks explicit ids before events are stored, and attributes them after (module
    docstring). ``log`` is the server's own buffer (None for imports)."""

    def __init__(
        self,
        store: EventStore,
        settings: DecisionSettings,
        log: DecisionLog | None = None,
        *,
        wait_unknown_s: float = 0.0,
    ) -> None:
        self._store = store
        self._settings = settings
        self._log = log
        self._wait = wait_unknown_s
        self._kinds = settings.kinds()

    def concerns(self, rows: Sequence[tuple[Any, ...]]) -> bool:
        """Whether ``check`` or ``attribute`` can find anything in these events, given as plain
        rows (``EVENT_COLUMNS`` order, a small group's): one names a list, or is of an outcome
        type while the window rule is on. A group of views does not, and skips both, which
        would each build its frame only to find nothing."""
        if any(row[_LIST] is not None for row in rows):
            return True
        window = self._settings.attribution_window_h > 0
        return window and any(row[_TYPE] in self._kinds for row in rows)

    # ---- before the append: refuse what names a list wrongly ------------------------------

    def check(self, events: pd.DataFrame) -> Refusals:
        """The rows whose ``recommendation_id``/``position`` cannot be right."""
        named = events["recommendation_id"].notna().to_numpy()
        if not named.any():
            return Refusals(np.zeros(0, dtype=np.int64), (), _concat([]))
        rows = np.flatnonzero(named)
        asked = events.iloc[rows]
        shown = self._shown_in(asked["recommendation_id"].unique().tolist())
        known = asked["recommendation_id"].isin(shown["recommendation_id"]).to_numpy()
        at = _position_in(asked, shown)
        sent = asked["position"].to_numpy(dtype=object)
        given = pd.notna(sent)
        wrong = given & (np.where(given, sent, 0).astype(np.int64) != at)
        bad = ~known | (at == 0) | wrong
        bad_rows: list[int] = []
        errors: list[FieldError] = []
        for n in np.flatnonzero(bad):  # refused rows only: the loop body is their error text
            row = rows[n]
            rid, item = asked["recommendation_id"].iat[n], asked["item_id"].iat[n]
            if not known[n]:
                reason = (
                    f"unknown recommendation_id {rid!r}: no list was served with it "
                    "(or it is past [decisions] retain_days)"
                )
                errors.append(FieldError("recommendation_id", reason))
            elif at[n] == 0:
                reason = f"item {item!r} was not in the list {rid!r}"
                errors.append(FieldError("recommendation_id", reason))
            else:
                reason = f"item {item!r} was shown at position {at[n]} of {rid!r}, not {sent[n]}"
                errors.append(FieldError("position", reason))
            bad_rows.append(int(row))
        return Refusals(np.asarray(bad_rows, dtype=np.int64), tuple(errors), shown)

    def _shown_in(self, ids: list[str]) -> pd.DataFrame:
        found = [lookup_rows(d) for i in ids if (d := self._pending(i)) is not None]
        rest = [i for i in ids if self._pending(i) is None]
        frames = [*found, self._store.shown_in(rest)] if rest else found
        shown = _concat(frames)
        missing = set(ids) - set(shown["recommendation_id"])
        if missing and self._wait > 0:  # perhaps another worker's, not flushed yet
            time.sleep(self._wait)
            shown = _concat([shown, self._store.shown_in(sorted(missing))])
        return shown

    def _pending(self, recommendation_id: str) -> Decision | None:
        return None if self._log is None else self._log.pending(recommendation_id)

    # ---- after the append: attribute -----------------------------------------------------

    def attribute(self, events: pd.DataFrame, shown: pd.DataFrame) -> pd.DataFrame:
        """The attributions of ``events`` (checked: ``shown`` is what ``check`` looked up):
        ``ATTRIBUTION_COLUMNS`` plus ``row`` (position in ``events``), ``release``, ``variant``,
        ``experiment``, ``item_id``, ``arm`` and ``arm_context`` (a contextual bandit's choice) and
        the list's ``placement`` (which placement's bandit chose the arm)."""
        explicit = self._explicit(events, shown)
        window = self._window(events)
        if len(explicit) == 0 and len(window) == 0:  # most live groups: views, no list named
            return explicit
        out = pd.concat([explicit, window], ignore_index=True)
        return out.sort_values("row", kind="stable").reset_index(drop=True)

    def _explicit(self, events: pd.DataFrame, shown: pd.DataFrame) -> pd.DataFrame:
        named = events["recommendation_id"].notna().to_numpy()
        if not named.any():
            return _empty()
        asked = events[named].assign(row=np.flatnonzero(named))
        asked = asked.assign(position=_position_in(asked, shown))
        meta = shown.drop_duplicates("recommendation_id")[
            [
                "recommendation_id",
                "release",
                "variant",
                "experiment",
                "arm",
                "arm_context",
                "placement",
            ]
        ]
        asked = asked.merge(meta, on="recommendation_id", how="left")
        return _attributions(asked, "explicit")

    def _window(self, events: pd.DataFrame) -> pd.DataFrame:
        window_us = int(self._settings.attribution_window_h * HOUR_US)
        if window_us <= 0:
            return _empty()
        # a set lookup per type (``ids_in``): pandas' ``map``/``isin`` on arrow strings cost
        # ~0.7 ms for a group commit of a few views, most of what attributing nothing cost
        outcome = ids_in(events["event_type"], self._kinds)
        eligible = outcome & events["recommendation_id"].isna().to_numpy()
        if not eligible.any():
            return _empty()
        users = events["user_id"].to_numpy(dtype=object)
        unit = np.where(pd.isna(users), events["session_id"].to_numpy(dtype=object), users)
        asked = events[eligible].assign(row=np.flatnonzero(eligible), unit=unit[eligible])
        units = asked["unit"].unique().tolist()
        lo, hi = int(asked["ts"].min()) - window_us, int(asked["ts"].max())
        pending = [
            lookup_rows(d)
            for d in (self._log.pending_for(set(units)) if self._log is not None else [])
        ]
        shown = _concat([*pending, self._store.shown_to(units, lo, hi)])
        if len(shown) == 0:
            return _empty()
        pairs = asked.drop(columns=["recommendation_id", "position"]).merge(
            shown, on=["unit", "item_id"], how="inner"
        )
        ts, served = pairs["ts"].to_numpy(np.int64), pairs["served_at"].to_numpy(np.int64)
        pairs = pairs[(served <= ts) & (served >= ts - window_us)]
        latest = pairs.sort_values(["row", "served_at", "recommendation_id"]).drop_duplicates(
            "row", keep="last"
        )
        return _attributions(latest, "window")


def _position_in(asked: pd.DataFrame, shown: pd.DataFrame) -> np.ndarray:
    """Where each asked (recommendation_id, item_id) was shown; 0 where it was not."""
    keys = shown.drop_duplicates(["recommendation_id", "item_id"]).set_index(
        ["recommendation_id", "item_id"]
    )["position"]
    index = pd.MultiIndex.from_arrays([asked["recommendation_id"], asked["item_id"]])
    return keys.reindex(index).fillna(0).to_numpy(dtype=np.int64)


def _concat(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return _NO_LOOKUPS.copy()
    return pd.concat(frames, ignore_index=True)


_OUT = (
    *ATTRIBUTION_COLUMNS,
    "row",
    "release",
    "variant",
    "experiment",
    "item_id",
    "arm",
    "arm_context",
    "placement",
)


def _attributions(frame: pd.DataFrame, rule: str) -> pd.DataFrame:
    if len(frame) == 0:
        return _empty()
    out = frame.assign(rule=rule)
    return out.loc[:, list(_OUT)].reset_index(drop=True)


def _empty() -> pd.DataFrame:
    return _NO_ATTRIBUTIONS.copy()


# Empty frames are what most groups of live events get (no recommendation_id, no outcome type):
# building one from typed Series costs ~1 ms, copying a ready one ~12 µs.
_NO_ATTRIBUTIONS = pd.DataFrame({c: pd.Series(dtype=object) for c in _OUT})
_NO_LOOKUPS = pd.DataFrame({c: pd.Series(dtype=object) for c in LOOKUP_COLUMNS})


#: How long past a writer's flush interval an unknown id is looked up again: the other process's
#: commit itself takes a moment.
FLUSH_MARGIN_S = 0.25


def live_attributor(
    store: EventStore, settings: DecisionSettings, log: DecisionLog
) -> Attributor | None:
    """The server's attributor (None with the log disabled: no id can be checked then, and
    events naming one are stored with it, unattributed)."""
    if not settings.enabled:
        return None
    return Attributor(
        store, settings, log, wait_unknown_s=settings.flush_interval_s + FLUSH_MARGIN_S
    )
