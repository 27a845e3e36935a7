"""``LinearBoard``: one server process's link to a contextual bandit's shared state.

The bandit (``linear``) chooses one of a few arms per request from a context vector; the
decision log keeps the arm, its propensity and the vector (``Decision.arm``…). Learning is two
additions per round, which is why the state can be shared by sums (``linear_rows``):

* when a list is served, its arm's A gains x xᵀ (``shown``): every round shown is a round of
  that arm's ridge regression, rewarded or not;
* when an event of the KPI's kind is attributed to a list with an arm, that arm's b gains x
  (``attributed``): the reward of a round is the number of such events attributed to its list
  (0 when none ever is), read from the logged context, so any worker can credit a list another
  worker served.

``sync`` — every ``board.SYNC_INTERVAL_S`` on the server's loop, like the arm counts — adds this
process's increments to ``bandit_linear`` and reads the totals back into ``state``. A store
outage keeps the increments for the next sync. What a kill can lose: the last interval's
increments, as with the counts.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Collection, Mapping, Sequence

import numpy as np
import pandas as pd

from recsmith.errors import StoreUnavailable
from recsmith.exploration.linear import LinearState
from recsmith.store.base import EventStore

log = logging.getLogger(__name__)


def model_key(arms: Sequence[str], dim: int, kpi: str, placement: str | None = None) -> str:
    """The ``bandit_linear.model`` of a bandit over ``arms`` with ``dim`` context columns,
    rewarded by ``kpi`` events; a placement's own bandit (``[placements.NAME.contextual]``) is
    keyed by its name too, so two placements with the same arms still learn apart."""
    key = f"{kpi}\x1f{dim}\x1f" + "\x1f".join(arms)
    return key if placement is None else f"@{placement}\x1f{key}"


class LinearBoard:
    """See module docstring. ``kinds`` maps event types to outcome kinds (``[decisions]``);
    ``kpi``: the kind that rewards ("click" or "purchase"); ``ridge``: A's prior λI;
    ``placement``: the placement whose own bandit this is (None: the pipeline's ``[contextual]``).
    """

    def __init__(
        self,
        store: EventStore,
        arms: Sequence[str],
        dim: int,
        kinds: Mapping[str, str],
        kpi: str = "click",
        ridge: float = 1.0,
        placement: str | None = None,
    ) -> None:
        if len(set(arms)) != len(arms) or not arms:
            raise ValueError("arms: distinct names, at least one")
        self._store = store
        self.arms = tuple(arms)
        self.dim = dim
        self.placement = placement
        self.model = model_key(self.arms, dim, kpi, placement)
        #: the key of the same bandit unscoped (a pipeline-wide one with these arms)
        self.base = model_key(self.arms, dim, kpi)
        self._kinds = dict(kinds)
        self._kpi = kpi
        self._ridge = ridge
        self._lock = threading.Lock()
        self._pending = LinearState(np.zeros((len(arms), dim, dim)), np.zeros((len(arms), dim)))
        # (version, state), replaced whole by ``sync``: the version changes with the state and
        # keys banked posterior draws, so a reader takes both at once
        self.snapshot: tuple[int, LinearState] = (0, LinearState.empty(len(arms), dim, ridge))

    @property
    def state(self) -> LinearState:
        """A (ridge-regression) state: the shared sums as of the last sync."""
        return self.snapshot[1]

    def shown(self, arm: str, context: Sequence[float]) -> None:
        """A list of ``arm`` served for ``context``: one round of that arm."""
        self._add(np.array([self.arms.index(arm)]), np.asarray([context], float), None)

    def attributed(self, frame: pd.DataFrame, claimed: Collection[str] = ()) -> None:
        """A batch of attributions (``Attributor.attribute``'s frame): each event of the KPI's
        kind on a list of one of these arms adds its logged context to that arm's b. A
        placement's own board takes only lists served at its placement; a pipeline-wide board
        leaves out the ``claimed`` placements (those with an own bandit of this one's arms and
        width, whose rounds would otherwise look like its own)."""
        if len(frame) == 0 or "arm" not in frame:
            return
        kind = frame["event_type"].map(self._kinds).to_numpy(dtype=object)
        placed = frame["placement"] if "placement" in frame else pd.Series(None, frame.index)
        here = (placed == self.placement) if self.placement is not None else ~placed.isin(claimed)
        here_rows = here.to_numpy(dtype=bool)
        mine = frame[(kind == self._kpi) & frame["arm"].isin(self.arms).to_numpy() & here_rows]
        if len(mine) == 0:
            return
        contexts = np.asarray([json.loads(c) for c in mine["arm_context"]], float)
        if contexts.shape[1] != self.dim:
            return  # logged by a bandit of another shape: not this model's rounds
        arms = np.asarray([self.arms.index(a) for a in mine["arm"]])
        self._add(arms, contexts, np.ones(len(mine)))

    def _add(self, arms: np.ndarray, contexts: np.ndarray, rewards: np.ndarray | None) -> None:
        with self._lock:
            if rewards is None:  # a round shown: A only
                np.add.at(self._pending.a, arms, contexts[:, :, None] * contexts[:, None, :])
            else:  # rewards: b only (A counted the round when it was shown)
                np.add.at(self._pending.b, arms, contexts * rewards[:, None])

    def cells(self) -> list[tuple[str, str, int, float]]:
        """Take the increments gathered since the last call as ``bandit_linear`` rows."""
        d = self.dim
        with self._lock:
            a, b = self._pending.a.copy(), self._pending.b.copy()
            self._pending.a[:] = 0.0
            self._pending.b[:] = 0.0
        values = np.concatenate([a.reshape(len(self.arms), d * d), b], axis=1)
        arm, cell = np.nonzero(values)
        return [
            (self.model, self.arms[k], int(c), float(values[k, c]))
            for k, c in zip(arm.tolist(), cell.tolist(), strict=True)
        ]

    def sync(self) -> None:
        """Add this process's increments to the store and read the shared sums back."""
        if not self.flush():
            return
        try:
            found = self._store.linear_cells(self.model)
        except StoreUnavailable as exc:
            log.warning("contextual bandit not read (%s): serving the last state", exc.cause)
            return
        fresh = self._state_of(found)
        version, state = self.snapshot
        if not (np.array_equal(fresh.a, state.a) and np.array_equal(fresh.b, state.b)):
            self.snapshot = (version + 1, fresh)

    def flush(self) -> bool:
        """Add this process's increments to the store; False (increments kept) on an outage."""
        cells = self.cells()
        try:
            if cells:
                self._store.add_linear_cells(cells)
        except StoreUnavailable as exc:
            self._put_back(cells)
            log.warning("contextual bandit not stored (%s): kept for the next sync", exc.cause)
            return False
        return True

    def _put_back(self, cells: Sequence[tuple[str, str, int, float]]) -> None:
        d = self.dim
        values = self._values([c[1:] for c in cells])
        with self._lock:
            self._pending.a[:] += values[:, : d * d].reshape(len(self.arms), d, d)
            self._pending.b[:] += values[:, d * d :]

    def _values(self, found: Sequence[tuple[str, int, float]]) -> np.ndarray:
        """[arms, d² + d]: the cells of ``(arm, cell, value)`` rows (other arms' left out)."""
        d = self.dim
        values = np.zeros((len(self.arms), d * d + d))
        for arm, cell, value in found:  # a few dozen cells per arm
            if arm in self.arms and 0 <= cell < d * d + d:
                values[self.arms.index(arm), cell] += value
        return values

    def _state_of(self, found: Sequence[tuple[str, int, float]]) -> LinearState:
        d = self.dim
        values = self._values(found)
        empty = LinearState.empty(len(self.arms), d, self._ridge)
        a = empty.a + values[:, : d * d].reshape(len(self.arms), d, d)
        return LinearState(a, values[:, d * d :].copy())
