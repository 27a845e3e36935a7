"""Choosing a source's parameters from a small grid, on the training events alone.

The best value of some parameters depends on the data far more than on the model: iALS's
confidence ``alpha`` scored best at 1 on the MovieLens validation splits (explicit ratings as
weights, dense users) and at 10 on diginetica's (views, weight 1, sparse sessions), with NDCG@10
halving at the other end. No default serves both, so a source may list values to try
(``tune = { alpha = [1, 10] }``) and training keeps the one under which the source *alone* best
ranks each user's held-out latest item (a random one where events carry no times). That holdout
only chooses parameters; the sources are then fitted on every event, and the ranker still learns
on its own point-in-time windows.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

from recsmith.evaluation.metrics import ndcg_at_k
from recsmith.features.interactions import Interactions, renumbering
from recsmith.models.registry import create
from recsmith.pipeline.config import PipelineConfig, SourceConfig
from recsmith.sparse_rows import csr_from_pairs

#: Users scored per grid point (a sample keeps tuning cheap on large data).
MAX_USERS = 5000
K = 10


def latest_ranks(full: Interactions, seed: int = 0) -> np.ndarray:
    """Each event's place from the end of its user's history: 0 for the latest, 1 for the one
    before, … (ties and time-less events broken by a seeded random draw, the same for every
    place, so the places of one user's events are a single order)."""
    n = len(full.event_users)
    tie = np.random.default_rng(seed).random(n)
    order = np.lexsort((tie, full.event_ts, full.event_users))
    users = full.event_users[order]
    ends = np.flatnonzero(np.r_[users[1:] != users[:-1], True])
    end_of_run = ends[np.searchsorted(ends, np.arange(n))]
    ranks = np.empty(n, np.int64)
    ranks[order] = end_of_run - np.arange(n)
    return ranks


@dataclass(frozen=True, slots=True)
class Holdout:
    """A past and the (user, item) pairs held out from it, the items in the past's own
    numbering (``Interactions.own_item_order``): ``items[n]`` of the full data is the past's
    item n (None: the same numbering)."""

    past: Interactions
    users: np.ndarray
    held: np.ndarray
    items: np.ndarray | None


def latest_item_holdout(full: Interactions, seed: int, max_users: int) -> Holdout:
    """The events without each user's latest one, and the (user, item) pairs held out: only
    items new to the user (a repeat teaches nothing), at most ``max_users`` of them (seeded)."""
    return holdout_at(full, latest_ranks(full, seed), 0, seed, max_users)


def holdout_at(
    full: Interactions, ranks: np.ndarray, place: int, seed: int, max_users: int
) -> Holdout:
    """Each user's event at ``place`` from the end (``latest_ranks``; 0: the latest) held out
    from the events before it: the past is every event but the latest ``place + 1`` of each user
    with at least two distinct items (a user's later events would tell what follows the held-out
    one), and the (user, item) pairs held out are the items new to a user with a past there whose
    held event has a positive weight, at most ``max_users`` of them (seeded): an item rated 0 or
    below is seen but no truth to hit, as in the time-cut fold and the ranker's label windows
    (``Interactions.new_to_users`` keeps positive weights only; review rv30r). The past numbers
    its items as a model trained on it alone would (``Interactions.own_item_order``), so ties
    among them break as they would there, not by events it does not hold (review rv27a)."""
    distinct = np.diff(full.matrix.indptr) >= 2
    kept = (ranks > place) | ~distinct[full.event_users]
    order = full.own_item_order(kept)
    past = full.subset(kept, order)
    held = (ranks == place) & distinct[full.event_users]
    users = full.event_users[held].astype(np.int32)
    items, liked = full.event_items[held], full.event_weights[held] > 0
    if order is not None:
        items = renumbering(order)[items]
    if not len(users):  # no user has that many distinct items: nothing is held out
        return Holdout(past, users, items, order)
    known = np.diff(past.matrix.indptr) > 0  # at place 0 every such user has a past
    # new to the user: not even rated 0 or below before (``had``), as serving would list it
    scored = liked & known[users] & (np.asarray(past.had_pairs()[users, items]).ravel() == 0)
    users, items = users[scored], items[scored]
    if len(users) > max_users:
        pick = np.sort(np.random.default_rng(seed).choice(len(users), max_users, replace=False))
        users, items = users[pick], items[pick]
    return Holdout(past, users, items, order)


def known_items(
    past: Interactions, full: Interactions, items: np.ndarray | None = None
) -> np.ndarray:
    """Bool per item of ``past`` (a ``subset`` of ``full``, its items numbered as ``items``
    says, ``Interactions.subset``; None: as ``full``'s): the items it knows as serving would —
    those with an event in it, and the catalogue's items with no event anywhere in
    ``full`` (truly cold: serving proposes them through content or new arrivals) — less every
    item the catalogue marks unavailable (serving never shows one). A split keeps every one of
    the full data's items (numbered after the past's own, ``own_item_order``), so an item whose
    only events are held out still has a column there, and a
    model scoring every column proposes it (EASE scores it 0, ahead of every negative score; on
    short sessions, where most users' rows score 0 nearly everywhere, EASE's lists are mostly such
    ties, in index order). Serving never can: an item first seen after training is in no model's
    catalogue. Those proposals are hits only validation can score, on the held-out items
    themselves (BENCHMARKS §105: 29–50 % of EASE's validation hits on diginetica ``short`` folds,
    none possible on test), so a split must not let any source propose them — a catalogue listing
    such an item included: training imports the catalogue of every item it saw, and
    ``from_events`` numbers the catalogue-only items after the event items, so EASE's 0-score
    ties in index order would put exactly the held-out-only items first. A renumbered past
    without ``items`` is refused: its numbering cannot be taken for ``full``'s."""
    if items is None and past.items is not full.items:
        # renumbered (``own_item_order``): without the map the catalogue's part (cold and
        # unavailable items, indexed in ``full``'s numbering) would block the wrong columns,
        # silently (review rv28n)
        raise ValueError("known_items: the past has its own item numbering; pass its items")
    known = np.zeros(full.n_items, dtype=bool)  # in ``full``'s numbering, then the past's
    known[past.event_items if items is None else items[past.event_items]] = True
    catalog = full.catalog
    if catalog is not None:
        listed = full.items.to_index(catalog.item_ids)  # ``from_events`` added every listed item
        cold = np.ones(full.n_items, dtype=bool)
        cold[full.event_items] = False
        known[listed[cold[listed]]] = True
        known[listed[~catalog.available]] = False
    return known if items is None else known[items]


def tune_sources(
    config: PipelineConfig, full: Interactions, seed: int = 0
) -> tuple[PipelineConfig, dict[str, Any]]:
    """``config`` with every tuned source's grid resolved, and a report: the NDCG@10 of each
    value tried and the one kept."""
    grids = [s for s in config.retrieval.sources if s.tune]
    if not grids:
        return config, {}
    out = latest_item_holdout(full, seed, MAX_USERS)
    past, users, items = out.past, out.users, out.held
    blocked = ~known_items(past, full, out.items)
    report: dict[str, Any] = {"users": len(users)}
    chosen: dict[str, dict[str, Any]] = {}
    for source in grids:
        combos = _combinations(source)
        ndcg = [_holdout_ndcg(source, combo, past, users, items, blocked) for combo in combos]
        best = int(np.argmax(ndcg))
        chosen[source.name] = combos[best]
        report[source.name] = {
            "ndcg@10": {_label(c): round(v, 5) for c, v in zip(combos, ndcg, strict=True)},
            "kept": _label(combos[best]),
        }
    sources = [
        s.model_copy(update={"params": {**s.params, **chosen[s.name]}}) if s.name in chosen else s
        for s in config.retrieval.sources
    ]
    tuned = config.model_copy(
        update={"retrieval": config.retrieval.model_copy(update={"sources": sources})}
    )
    return tuned, report


def _holdout_ndcg(
    source: SourceConfig,
    params: dict[str, Any],
    past: Interactions,
    users: np.ndarray,
    items: np.ndarray,
    blocked: np.ndarray,
) -> float:
    """NDCG@10 of ``source``'s model with ``params``, fitted on ``past``, for one held-out item
    per user (the evaluation's own metric code); the ``blocked`` items (those ``past`` does not
    know, ``known_items``) are never proposed, nor items with no evidence (``with_evidence``:
    the source serving the model never proposes them, so they can score no hit here)."""
    assert source.model is not None  # tuned sources are model sources (config validation)
    model = create(source.model, **{**source.params, **params}).fit(past)
    top = model.recommend(users, K, exclude=past.had_pairs()[users], blocked=blocked)
    top = model.with_evidence(top)
    truth = csr_from_pairs(len(users), past.n_items, np.arange(len(users)), items)
    return float(ndcg_at_k(top.ids, truth, K).mean())


def _combinations(source: SourceConfig) -> list[dict[str, Any]]:
    """Every combination of the source's grid values, in a stable order."""
    names = sorted(source.tune)
    grid = itertools.product(*(source.tune[n] for n in names))
    return [dict(zip(names, values, strict=True)) for values in grid]


def _label(combo: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in combo.items())
