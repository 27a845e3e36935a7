"""``[contextual]`` in ``pipeline.toml``: a contextual bandit choosing which list a request gets.

```toml
[contextual]
arms = ["pipeline", "trending"]   # "pipeline" (the whole list) or retrieval source names
policy = "linear_thompson"        # or "linucb"
kpi = "click"                     # attributed "click"s or "purchase"s reward an arm
ranker_features = false           # true: the ranker's request-level features join the context
```

A placement may have its own bandit, with its own arms and learned state:

```toml
[placements.home.contextual]
arms = ["pipeline", "knn"]
```

Requests to ``?placement=home`` then choose among those arms only, and only their rewards teach
that bandit; every other request uses ``[contextual]`` (if any), where the placement is a
feature of the context (``bandit_for``).

An arm named for a retrieval source serves the pipeline's list cut to what that source proposed
(re-ranked, rules applied, popularity filling the rest); ``"pipeline"`` serves the list as the
pipeline ranks it. Per request the server builds the context (``linear.context_vector``: history
length, known user or visitor, hour, placement), chooses an arm (``choose``, seeded by the
recommendation id so a request replays), and logs the arm, its propensity and the context in the
decision; an attributed outcome then updates that arm's model (``linear_board``).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from recsmith.exploration.linear import (
    BANK,
    CONTEXT_NAMES,
    context_vector,
    linear_thompson,
    linucb,
    thompson_bank,
)
from recsmith.exploration.linear_board import LinearBoard, model_key
from recsmith.exploration.ranker_context import RANKER_CONTEXT_NAMES, ranker_context
from recsmith.exploration.streams import Stream, seeds_of, uniforms
from recsmith.exploration.thompson import bank_seed
from recsmith.retrieval.candidates import Candidates
from recsmith.store.base import EventStore

#: The arm that serves the pipeline's whole list.
WHOLE = "pipeline"


class ContextualConfig(BaseModel):
    """See module docstring; every key is checked when the file is read."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    arms: list[str] = Field(min_length=2, max_length=16, description="lists to choose among")
    policy: Literal["linear_thompson", "linucb"] = "linear_thompson"
    kpi: Literal["click", "purchase"] = "click"
    alpha: float = Field(1.0, ge=0, le=100, description="linucb: width of the bound")
    scale: float = Field(1.0, gt=0, le=100, description="linear_thompson: posterior scale v")
    ridge: float = Field(1.0, gt=0, le=1e6, description="prior precision: A = ridge * I")
    ranker_features: bool = Field(
        False, description="append the ranker's device, weekday and user-events columns"
    )

    @model_validator(mode="after")
    def _distinct(self) -> ContextualConfig:
        if len(set(self.arms)) != len(self.arms):
            raise ValueError("arms: distinct names")
        return self


@dataclass(frozen=True, slots=True)
class Choice:
    """The arm a request gets, its probability, the context it was chosen for, and the board
    that learns from it (``shown`` once the list is served)."""

    arm: str
    propensity: float
    context: tuple[float, ...]
    board: LinearBoard = field(compare=False, repr=False)


def request_context(
    history: int, known: bool, hour: int, placement: str | None, placements: Sequence[str]
) -> np.ndarray:
    """[1, d] context of one request (``linear.context_vector``); placements in sorted order."""
    names = sorted(placements)
    at = names.index(placement) if placement in names else -1
    return context_vector(
        np.array([history]), np.array([known]), np.array([hour]), np.array([at]), len(names)
    )


def source_rows(cands: Candidates, source: str) -> np.ndarray:
    """bool per candidate row: proposed by ``source`` (every row for ``WHOLE``; none for a
    source this release lacks)."""
    if source == WHOLE:
        return np.ones(len(cands), bool)
    if source not in cands.sources:
        return np.zeros(len(cands), bool)
    return cands.source_ranks[:, cands.sources.index(source)] > 0


def dim_of(placements: Sequence[str], ranker_features: bool = False) -> int:
    extra = len(RANKER_CONTEXT_NAMES) if ranker_features else 0
    return len(CONTEXT_NAMES) + len(placements) + extra


def choose(
    config: ContextualConfig, board: LinearBoard, context: np.ndarray, request_id: str
) -> Choice:
    """The arm for one request: LinUCB's (propensity 1), or linear Thompson's draw picked by a
    uniform hashed from ``request_id`` among the bank of the board's current state."""
    if config.policy == "linucb":
        arm = int(linucb(board.state, context, config.alpha)[0][0])
        chance = 1.0
    else:
        bank = _bank(board, config.scale)
        pick = (uniforms(seeds_of([request_id]), Stream.ARM, 1)[:, 0] * len(bank)).astype(int)
        arms, chances = linear_thompson(bank, context, pick)
        arm, chance = int(arms[0]), float(chances[0])
    return Choice(config.arms[arm], chance, tuple(context[0].tolist()), board)


_BANKS: dict[tuple[str, int, float], np.ndarray] = {}
_BANKS_LOCK = threading.Lock()


def _bank(board: LinearBoard, scale: float) -> np.ndarray:
    """The banked draws of the board's current state: computed once per synced state, seeded
    by its version and arms (equal inputs, equal bank: the propensities are exact for it)."""
    version, state = board.snapshot
    key = (board.model, version, scale)
    found = _BANKS.get(key)
    if found is None:
        seed = bank_seed(version, np.asarray(board.arms, dtype=object))
        found = thompson_bank(state, scale, BANK, seed)
        with _BANKS_LOCK:
            if len(_BANKS) >= 8:
                _BANKS.clear()
            _BANKS[key] = found
    return found


@dataclass(frozen=True, slots=True)
class Bandit:
    """The bandit a request to a placement uses: its ``config``, the ``placement`` it belongs
    to (None: the pipeline's ``[contextual]``) and the placements its context one-hot spans."""

    config: ContextualConfig
    placement: str | None
    places: tuple[str, ...]


def bandit_for(config: object, placement: str | None) -> Bandit | None:
    """The bandit of ``placement`` in a pipeline ``config``: its own
    ``[placements.NAME.contextual]`` (context without the placement one-hot: it is constant
    there), else the pipeline's ``[contextual]`` (placements as features), else None."""
    placements = getattr(config, "placements", {})
    own = getattr(placements.get(placement), "contextual", None) if placement else None
    if own is not None:
        return Bandit(own, placement, ())
    shared = getattr(config, "contextual", None)
    return None if shared is None else Bandit(shared, None, tuple(placements))


class ContextualBoards:
    """One ``LinearBoard`` per bandit the served pipelines declare (a hot swap may bring
    another), made on first use (one store read then); the server syncs and feeds attributions
    to all of them."""

    def __init__(self, store: EventStore, kinds: Mapping[str, str]) -> None:
        self._store = store
        self._kinds = dict(kinds)
        self._lock = threading.Lock()
        self.boards: dict[str, LinearBoard] = {}

    def board(
        self, config: ContextualConfig, dim: int, placement: str | None = None
    ) -> LinearBoard:
        """The board of a bandit (``placement``: the placement whose own bandit it is)."""
        # the per-request path: one lookup
        found = self.boards.get(model_key(config.arms, dim, config.kpi, placement))
        if found is not None:
            return found
        made = LinearBoard(
            self._store, config.arms, dim, self._kinds, config.kpi, config.ridge, placement
        )
        made.sync()  # a restarted server starts from the stored state, not the prior
        with self._lock:
            return self.boards.setdefault(made.model, made)

    def all(self) -> list[LinearBoard]:
        with self._lock:
            return list(self.boards.values())

    @property
    def active(self) -> bool:
        """Whether some served pipeline has chosen an arm (then the sync loop runs)."""
        return bool(self.boards)

    def attributed(self, frame: pd.DataFrame) -> None:
        """A batch of attributions, to every board (each takes its own arms' lists, a
        placement's own board only its placement's, and a pipeline-wide board not those of a
        placement whose own bandit has its arms and width)."""
        boards = self.all()
        for board in boards:
            claimed = {b.placement for b in boards if b.placement and b.base == board.model}
            board.attributed(frame, claimed)

    def sync(self) -> None:
        for board in self.all():
            board.sync()

    def flush(self) -> None:
        for board in self.all():
            board.flush()


def contextual_choice(
    boards: ContextualBoards | None,
    served: object,
    history: int,
    known: bool,
    hour: int | None,
    placement: str | None,
    request_id: str,
    user_id: str | None = None,
    device: str | None = None,
) -> Choice | None:
    """The arm for a request to ``served`` (None unless it is a pipeline with a bandit for
    this placement, ``bandit_for``): ``history`` items the user has, ``known`` user or visitor,
    the request's ``hour`` (UTC now when not given), the placement among the pipeline's
    ``[placements]``; with ``ranker_features``, the ranker's columns for ``user_id`` (the
    release's user, None: a visitor) and the request's ``device`` (``ranker_context``)."""
    bandit = bandit_for(getattr(served, "config", None), placement)
    if boards is None or bandit is None:
        return None
    now = datetime.now(UTC)
    at = now.hour if hour is None else hour
    context = request_context(history, known, at, placement, bandit.places)
    extra = bandit.config.ranker_features
    if extra:
        users = served.bundle.users  # type: ignore[attr-defined]
        index = int(users.to_index([user_id])[0]) if user_id is not None else -1
        moment = int(now.timestamp() * 1_000_000)
        ranked = ranker_context(served.state, index, device, moment)  # type: ignore[attr-defined]
        context = np.concatenate([context, ranked[None]], axis=1)
    board = boards.board(bandit.config, dim_of(bandit.places, extra), bandit.placement)
    return choose(bandit.config, board, context, request_id)
