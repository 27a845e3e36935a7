"""ModelBundle: a trained model with everything needed to serve it, saved as one directory.

The model sees dense indices only; the bundle owns the id maps, the items each user already had
(excluded from their lists), and the popularity fallback that answers users the model does not know
and fills lists the model cannot complete. Serving holds one immutable bundle and swaps it whole.

A single model carries no catalogue, but the shop's availability still binds it: the server feeds
the store's item writes in (``with_catalog``), and an item marked unavailable is masked out of every
list the model or the popularity fallback makes (one mask per batch: shops keep thousands of
sold-out items, too many to copy into every user's exclusion row), and dropped from the item lists
(similar, together, popular).
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from scipy import sparse

from recsmith import __version__
from recsmith.array_files import read_arrays, save_arrays
from recsmith.atomic_dir import atomic_directory
from recsmith.errors import ValidationError
from recsmith.events.schema import Item
from recsmith.features.interactions import Interactions, matrix_fingerprint
from recsmith.ids import IdMap, sort_order
from recsmith.models.base import Recommender, sparse_from_arrays, sparse_to_arrays
from recsmith.models.learned import learning_warnings
from recsmith.models.popularity import Popular
from recsmith.models.registry import model_class
from recsmith.models.topk import TopK
from recsmith.sparse_rows import csr_of_rows, format_checked, newest_first

#: 2: arrays as plain ``.npy`` files in directories, served memory-mapped
#: (``recsmith.array_files``); 1: the same arrays in ``.npz`` archives, still read.
FORMAT_VERSION = 2
SUPPORTED_FORMATS = (1, 2)


class NeedsPipeline(ValueError):
    """An option (rules, categories, diversity) that only a pipeline deployment can apply: the
    request is fine, the deployment is what lacks it (HTTP answers 409, not 422)."""


@dataclass(frozen=True, slots=True)
class BatchRecommendations:
    """Lists for a batch of users in external ids. ``fallback[i]``: row i came from popularity
    because the user is unknown and had no profile the model could read (a known user the
    model had nothing for is not one: its items' ``sources`` say ``FILL``, and ``Answer.tiers``
    ``popular``). ``sources[i][j]``: who proposed item j of row i (``Answer.sources``), so that
    a batch file or a decision log can tell a model's item from a popularity fill."""

    user_ids: np.ndarray  # object [n]
    item_ids: list[np.ndarray]  # per user, object arrays (length <= k)
    scores: list[np.ndarray]  # per user, float32
    fallback: np.ndarray  # bool [n]
    sources: list[list[list[str]]]


#: Who answered a request, best first: the model for a known user, the session's items for an
#: anonymous visitor, the model from the stored profile of a user unknown at training (a model
#: with a user tower, ``two_tower``: ``ModelBundle.needs_profile``), popularity within the
#: categories the request asked for (pipelines), popularity within the user's profile segments
#: (pipelines, ``segments``; within the requested categories too when the segments had any of
#: their items: ``Pipeline.segment_fallback``), global popularity when nothing is known. The
#: order is the codes', not the chain's; a pipeline's tiers are indices into this tuple: a new
#: tier goes after ``session``, never before.
TIERS = ("personalised", "session", "profile", "category", "segment", "popular")

#: The source named for a slot the popularity fallback filled: the name a pipeline gives its
#: own popularity fill (``pipeline.runtime.FALLBACK``), so both deployments label it alike.
FILL = "popular"

#: The note (``Answer.notes``, the response's ``degraded``) on a known user's list that the
#: model or the sources answered in part, popularity filling the rest: the list is weaker than
#: ``tier: personalised`` alone says (a list popularity answered whole says ``tier: popular``).
POPULAR_FILL = "popular_fill"


def with_fill_notes(notes: list[list[str]], mixed: np.ndarray) -> list[list[str]]:
    """``notes`` (per query, or empty for none) with ``POPULAR_FILL`` added to each ``mixed``
    query's: a personalised list that popularity filled in part."""
    if not mixed.any():
        return notes
    rows = notes or [[] for _ in range(len(mixed))]
    return [[*row, POPULAR_FILL] if m else row for row, m in zip(rows, mixed.tolist(), strict=True)]


@dataclass(frozen=True, slots=True)
class Answer:
    """A served batch: the lists, the tier that answered each query, and per listed item the
    sources that proposed it (``FILL`` for the popularity fallback's items) — the start of
    explanations."""

    lists: BatchRecommendations
    tiers: list[str]
    sources: list[list[list[str]]]
    timings: dict[str, float] = field(default_factory=dict)  # stage → seconds
    candidates: dict[str, int] = field(default_factory=dict)  # source → items in final lists
    #: per listed item, the recent item an item-to-item source proposed it from (None: no such
    #: item; ``pipeline.anchors``); empty when the deployment names none
    anchors: list[list[str | None]] = field(default_factory=list)
    #: per listed item, the probability the policy showed it there (``recsmith.exploration``);
    #: empty for deterministic lists (every propensity 1)
    propensities: list[list[float]] = field(default_factory=list)
    #: per query, what its list fell short of: ``exposure:<group>`` for an exposure floor the
    #: allowed candidates could not meet (``recsmith.fairness``), ``POPULAR_FILL`` for a known
    #: user's list popularity filled in part; empty when nothing did
    notes: list[list[str]] = field(default_factory=list)


class ModelBundle:
    """See module docstring. Build with ``train`` or ``load``; never mutated afterwards."""

    #: ``answer`` reads ``history``, the user's stored items apart from ``extra_seen``: a user
    #: tower, or a model scoring a visitor's own items, pools them (``Pipeline`` does not, so
    #: the coalescer's flush builds that argument only for a release that reads it)
    reads_history: ClassVar[bool] = True

    def __init__(
        self,
        model: Recommender,
        users: IdMap,
        items: IdMap,
        seen: sparse.csr_array,
        popular: Popular,
        manifest: dict[str, Any],
    ) -> None:
        self.model = model
        self.users = users
        self.items = items
        self.seen = seen
        self.popular = popular
        self.manifest = manifest
        self.available = np.ones(len(items), dtype=bool)  # as the store's catalogue says now
        self.blocked: np.ndarray | None = None  # ~available, or None while all are available
        self.catalog_stamp = 0  # write time of the latest catalogue change applied (µs)

    @property
    def version(self) -> str:
        return str(self.manifest["version"])

    def with_catalog(self, items: Sequence[Item], stamp: int) -> ModelBundle:
        """This release with the availability of ``items`` applied (other item fields mean
        nothing to a single model; items it was not trained on are ignored). A shallow copy:
        the model is shared, and requests already running on this object finish on it."""
        idx = self.items.to_index([item.item_id for item in items])
        known = idx >= 0
        out = copy.copy(self)
        out.available = self.available.copy()
        out.available[idx[known]] = np.fromiter((i.available for i in items), bool, len(items))[
            known
        ]
        out.blocked = None if out.available.all() else ~out.available
        out.catalog_stamp = stamp
        return out

    @classmethod
    def train(
        cls, data: Interactions, model: Recommender, *, progress: bool = False, **info: Any
    ) -> ModelBundle:
        """Fit ``model`` (and the popularity fallback) on ``data``."""
        started = datetime.now(UTC)
        if progress and "progress" in model.fit.__code__.co_varnames:
            model.fit(data, progress=True)  # type: ignore[call-arg]
        else:
            model.fit(data)
        popular = Popular().fit(data)
        warnings = learning_warnings({model.name: model}, data)
        return cls.assemble(
            model,
            data.users,
            data.items,
            data.matrix,
            popular,
            seen=data.had(),
            started=started,
            **({"fit_warnings": warnings} if warnings else {}),
            **info,
        )

    @classmethod
    def assemble(
        cls,
        model: Recommender,
        users: IdMap,
        items: IdMap,
        matrix: sparse.csr_array,
        popular: Popular,
        *,
        started: datetime,
        seen: sparse.csr_array | None = None,
        **info: Any,
    ) -> ModelBundle:
        """A bundle of a fitted ``model`` and fallback on the interaction ``matrix`` (users ×
        items, as ``Interactions.matrix``): ``train``'s last step, and how a model fitted on
        Spark becomes the same artifact, manifest included. ``seen``: what serving excludes
        (``Interactions.had``, every pair an event touched), ``matrix`` where not given."""
        fingerprint = matrix_fingerprint(matrix, users, items)
        manifest = {
            "format_version": FORMAT_VERSION,
            "recsmith_version": __version__,
            "version": f"{model.name}-{started:%Y%m%d%H%M%S}-{fingerprint[:6]}",
            "model": model.name,
            "config": model.get_params(),
            "created_at": started.isoformat(),
            "fit_seconds": round((datetime.now(UTC) - started).total_seconds(), 3),
            "data_fingerprint": fingerprint,
            "n_users": len(users),
            "n_items": len(items),
            "n_interactions": int(matrix.nnz),
            **info,
        }
        return cls(
            model, users, items, (matrix if seen is None else seen).tocsr(), popular, manifest
        )

    # ---- recommending -----------------------------------------------------------------------

    def exclusions(
        self,
        idx: np.ndarray,
        extra: Sequence[Collection[str]] | None,
        *,
        also: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> sparse.csr_array:
        """One CSR row per query: the training items of known users (``idx`` ≥ 0) plus ``extra``
        items (seen after training, e.g. ingested over HTTP) and ``also``, (row, item index)
        pairs the caller has looked up already. Built in one construction from index arrays,
        because a single-user request cannot afford a chain of sparse operations."""
        parts = [self.item_pairs(extra)] if extra is not None else []
        if also is not None:
            parts.append(also)
        rows = cols = None  # nothing added: ``csr_of_rows`` copies the training rows as they are
        if parts:
            rows, cols = (
                parts[0] if len(parts) == 1 else map(np.concatenate, zip(*parts, strict=True))
            )
        return csr_of_rows(self.seen, idx, len(self.items), rows, cols)

    def liked(self, user: int) -> np.ndarray:
        """The training items of user index ``user`` with a positive weight, by item index:
        what the model scored them from, and what their history is read from. ``seen``'s
        explicit 0s, items rated 0 or below (``Interactions.had``), are had — never listed —
        but no signal, never an anchor. Empty for -1 (a visitor), so callers concatenate it."""
        if user < 0:
            return np.zeros(0, dtype=self.seen.indices.dtype)
        span = slice(self.seen.indptr[user], self.seen.indptr[user + 1])
        return self.seen.indices[span][self.seen.data[span] > 0]

    def unliked(self, user: int) -> np.ndarray:
        """``liked``'s complement among the training items of user index ``user``: those
        weighing 0 or below (``seen``'s explicit 0s); empty for -1 (a visitor)."""
        if user < 0:
            return np.zeros(0, dtype=self.seen.indices.dtype)
        span = slice(self.seen.indptr[user], self.seen.indptr[user + 1])
        return self.seen.indices[span][self.seen.data[span] <= 0]

    def item_pairs(self, lists: Sequence[Collection[str]]) -> tuple[np.ndarray, np.ndarray]:
        """(row, item index) for every id in ``lists[row]`` the model knows (others are skipped:
        an item first seen after training cannot be scored or excluded by index)."""
        sizes = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
        flat = list(chain.from_iterable(lists))
        if not flat:
            return np.zeros(0, np.int64), np.zeros(0, np.int32)
        cols = self.items.to_index(flat)
        ok = cols >= 0
        return np.repeat(np.arange(len(lists)), sizes)[ok], cols[ok]

    def top_k(
        self,
        user_ids: Sequence[str] | np.ndarray,
        k: int,
        *,
        extra_seen: Sequence[Collection[str]] | None = None,
    ) -> tuple[TopK, np.ndarray]:
        """Top ``k`` internal item indices per user id, and which users the model knew.

        Known users are answered by the model, unknown ones by popularity. Items a user had in
        training, or lists in ``extra_seen`` (aligned with ``user_ids``), are never returned. Lists
        the model cannot fill to ``k`` are completed with popular items (``_fill_from_popular``).
        """
        top, known, _, _ = self._lists(user_ids, k, extra_seen)
        return top, known

    def _lists(
        self,
        user_ids: Sequence[str] | np.ndarray,
        k: int,
        extra_seen: Sequence[Collection[str]] | None,
        profiles: Sequence[Mapping[str, Any] | None] | None = None,
        history: Sequence[Sequence[str]] | None = None,
    ) -> tuple[TopK, np.ndarray, np.ndarray, np.ndarray]:
        """``top_k``, per row how many leading items the model proposed (the rest are the
        popularity fill), and which rows the model answered from a profile: an unknown user
        when the model has a user tower (``needs_profile``) and either ``profiles[i]`` holds a
        value the tower learnt or the user met items since training. Those items
        (``history[i]``, oldest first; None: ``extra_seen`` is all the user's own, as the CLI
        passes it) are pooled into the tower, its latest ``history`` of them as training pooled
        them; the rest of ``extra_seen`` (a request's ``exclude=``, capped items) is only never
        listed, lest an excluded item move the whole list towards it."""
        user_ids = np.asarray(user_ids, dtype=object)
        n = len(user_ids)
        idx = self.users.to_index(user_ids)
        known = idx >= 0
        exclude = self.exclusions(idx, extra_seen)
        ids = np.full((n, k), -1, dtype=np.int32)
        scores = np.full((n, k), -np.inf, dtype=np.float32)
        if known.any():
            rows = exclude if known.all() else exclude[np.flatnonzero(known)]
            top = self.model.recommend(idx[known], k, exclude=rows, blocked=self.blocked)
            top = self.model.with_evidence(top)
            ids[known], scores[known] = top.ids, top.scores
        profiled = np.zeros(n, bool)
        if profiles is not None and self.serves_profiles:
            profiled = ~known & np.fromiter(map(bool, profiles), bool, n)
        if profiled.any():
            own = history if history is not None else extra_seen
            profiled = self._profile_lists(ids, scores, profiled, profiles, own, exclude, k)
        proposed = (ids >= 0).sum(axis=1)
        missing = proposed < k
        if missing.any():
            self._fill_from_popular(ids, scores, exclude, np.flatnonzero(missing), k)
        return TopK(ids, scores), known, proposed, profiled

    def _profile_lists(
        self,
        ids: np.ndarray,
        scores: np.ndarray,
        asking: np.ndarray,
        profiles: Sequence[Mapping[str, Any] | None],
        own: Sequence[Sequence[str]] | None,
        exclude: sparse.csr_array,
        k: int,
    ) -> np.ndarray:
        """``_lists``' rows of unknown users with a profile (``asking``) answered by the user
        tower into ``ids`` / ``scores``, and which rows it answered: those whose profile holds a
        value the tower learnt (``describes``) or who met a known item since training (``own``);
        the others, whose vector would be the tower's bias alone, are left to popularity."""
        at = np.flatnonzero(asking)
        lists = [own[i] for i in at] if own else [[] for _ in at]
        model: Any = self.model
        # each list's ids looked up once: whether a row met a known item, and its history
        rows, cols = self.item_pairs(lists)
        had = np.zeros(len(at), bool)
        had[rows] = True
        tokens = model.profile_tokens([profiles[i] for i in at])  # encoded once, used twice
        told = model.describes(tokens) | had
        at = at[told]
        if len(at):
            kept = told[rows]  # the pairs of the rows answered, renumbered among them
            top = model.recommend_for_profiles(
                tokens[np.flatnonzero(told)],
                k,
                history=self._in_order(np.cumsum(told)[rows[kept]] - 1, cols[kept], len(at)),
                exclude=exclude[at],
                blocked=self.blocked,
            )
            ids[at], scores[at] = top.ids, top.scores
        answered = np.zeros_like(asking)
        answered[at] = True
        return answered

    def _in_order(self, rows: np.ndarray, cols: np.ndarray, n: int) -> sparse.csr_array:
        """``n`` rows of the (row, item index) pairs in the order given (``item_pairs`` of
        lists oldest first), each pair once at its latest place, a row's columns in that order:
        a user tower pools a history's last items by column order (time), which
        ``exclusions``' canonical rows (sorted by item index) would lose."""
        key = rows.astype(np.int64) * len(self.items) + cols
        _, from_end = np.unique(key[::-1], return_index=True)
        keep = np.sort(len(key) - 1 - from_end)
        keep = keep[np.argsort(rows[keep], kind="stable")]  # pairs of a row together, in order
        counts = np.bincount(rows[keep], minlength=n)
        indptr = np.concatenate([[0], np.cumsum(counts)])
        return sparse.csr_array(
            (np.ones(len(keep), np.float32), cols[keep], indptr), shape=(n, len(self.items))
        )

    @property
    def serves_profiles(self) -> bool:
        """Whether the model turns a profile into a list (a user tower: ``two_tower``)."""
        return callable(getattr(self.model, "recommend_for_profiles", None))

    def weighs_history(self, user_id: str) -> bool:
        """Whether ``answer`` scores ``user_id`` from ``history``: a user unknown to the model
        (a user tower pools it, a model scoring histories answers them from it), so serving
        hands it only the items whose newest event weighs above 0 (``StoredItems.weighed``: a
        0-star item is seen, never liked history, as ``liked`` keeps training's; issue #15).
        A known user is answered from training (the cheaper read: BENCHMARKS §165); should the
        model propose nothing, ``recommend_for_items`` leaves out of its history what training
        weighs 0 or below (``unliked``)."""
        return self.weighs_histories and bool(self.users.to_index([user_id])[0] < 0)

    @property
    def weighs_histories(self) -> bool:
        """Whether ``weighs_history`` can hold for any user (a user tower, a model scoring
        histories): a release that never can (iALS, popularity) never reads the liked items, so
        a shadow of it lets go of its thread's store connection (``ShadowRunner``)."""
        return self.serves_profiles or self.model.scores_histories

    @property
    def history_in_time_order(self) -> bool:
        """Whether ``answer``'s ``history`` must come oldest first: the model reads a history's
        order (``Recommender.reads_order``), so serving reads the stored items by time
        (``EventStore.user_items(by_time=True)``); any other model reads them as a set, and
        serving keeps the cheaper read (BENCHMARKS §165). ``Pipeline`` has no such property: its
        sources read the stored items from ``extra_seen``, as a set."""
        return self.model.reads_order

    def needs_profile(self, user_id: str) -> bool:
        """Whether serving should read ``user_id``'s stored profile (``PUT /v1/users/{id}``,
        ``import --format users``) for this release: the model has a user tower and the user
        is unknown to it, so the profile is what personalises the list (``Pipeline`` has its
        own, for its segments)."""
        return self.serves_profiles and bool(self.users.to_index([user_id])[0] < 0)

    def recommend(
        self,
        user_ids: Sequence[str] | np.ndarray,
        k: int,
        *,
        extra_seen: Sequence[Collection[str]] | None = None,
        profiles: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> BatchRecommendations:
        """``top_k`` in external ids: what the CLI and the HTTP API return. ``profiles``: per
        user, a stored profile (None: none) that a model with a user tower answers an unknown
        user from (``_lists``); such a row is no ``fallback``."""
        return self._recommend(user_ids, k, extra_seen, profiles)[0]

    def _recommend(
        self,
        user_ids: Sequence[str] | np.ndarray,
        k: int,
        extra_seen: Sequence[Collection[str]] | None,
        profiles: Sequence[Mapping[str, Any] | None] | None,
        history: Sequence[Sequence[str]] | None = None,
    ) -> tuple[BatchRecommendations, np.ndarray]:
        """``recommend``, and which rows the model answered from a profile (``_lists``)."""
        user_ids = np.asarray(user_ids, dtype=object)
        top, known, proposed, profiled = self._lists(user_ids, k, extra_seen, profiles, history)
        return self.external_batch(user_ids, top, ~(known | profiled), proposed), profiled

    def external_batch(
        self, row_ids: np.ndarray, top: TopK, fallback: np.ndarray, proposed: np.ndarray
    ) -> BatchRecommendations:
        """Internal top-k rows as external item ids (empty slots dropped), one row per query;
        ``proposed[i]``: how many leading items of row i the model proposed, the rest being the
        popularity fill (sourced ``FILL``, not the model: the model had nothing there)."""
        item_ids = [self.items.to_external(row[row >= 0]) for row in top.ids]
        name = self.model.name
        return BatchRecommendations(
            row_ids,
            item_ids,
            [s[r >= 0] for s, r in zip(top.scores, top.ids, strict=True)],
            fallback,
            [
                [[name] for _ in range(own)] + [[FILL] for _ in range(len(ids) - own)]
                for ids, own in zip(item_ids, proposed.tolist(), strict=True)
            ],
        )

    def recommend_for_items(
        self,
        histories: Sequence[Sequence[str]],
        k: int,
        *,
        users: np.ndarray | None = None,
        exclude: Sequence[Collection[str]] | None = None,
    ) -> BatchRecommendations:
        """Lists for visitors known only by their items so far (anonymous sessions). Models that
        score item histories answer; others fall back to popularity. ``user_ids`` holds row
        numbers as text; ``fallback`` marks rows the model could not answer. ``histories``:
        each visitor's own items, oldest first, read in that order (a sequence model, a user
        tower's latest items), each once at its latest place. ``users`` (user indices, -1 for a
        visitor) puts each known user's training items ahead of its history. ``exclude``: per
        row, items never listed that are not the visitor's (a request's ``exclude=``, capped
        items): masked only, never read as history, lest they move the list towards them."""
        n = len(histories)
        rows, cols = self.item_pairs(histories)
        owners = np.full(n, -1) if users is None else users
        # a visitor's own items' places, newest first (a model weighing recency: EASE's
        # ``recency``); a known user's items take none (training-time weights until a retrain,
        # README), nor do the training items put ahead below
        places = None
        visitor = owners[rows] < 0 if self.model.weighs_recency else None
        if visitor is not None and visitor.any():
            places = newest_first(n, len(self.items), *_reversed_rows(rows[visitor], cols[visitor]))
        trained = bool((owners >= 0).any())
        if trained:  # training items first: the oldest; those weighted above 0 (``liked``)
            liked = [self.liked(u) for u in owners.tolist()]  # a few rows: the fallback's
            # a stored item training weighs 0 or below is no history either (``unliked``)
            out = [self.unliked(u) for u in owners.tolist()]
            if any(map(len, out)):
                n_items = len(self.items)
                bad = np.repeat(np.arange(n), list(map(len, out))) * n_items + np.concatenate(out)
                keep = ~np.isin(rows * n_items + cols, bad)
                rows, cols = rows[keep], cols[keep]
            rows = np.concatenate([np.repeat(np.arange(n), list(map(len, liked))), rows])
            cols = np.concatenate([*liked, cols])
        history = self._in_order(rows, cols, n)
        masked = history
        if exclude is not None or trained:  # every training item masked, rated 0 or below too
            masked = (history + self.exclusions(owners, exclude)).tocsr()
        answerable = (
            np.diff(history.indptr) > 0 if self.model.scores_histories else np.zeros(n, bool)
        )
        ids = np.full((n, k), -1, dtype=np.int32)
        scores = np.full((n, k), -np.inf, dtype=np.float32)
        if answerable.any():
            at = np.flatnonzero(answerable)
            top = self.model.recommend_from_items(
                history[at],
                k,
                exclude=masked[at],
                blocked=self.blocked,
                places=places if places is None or len(at) == n else places[at],
            )
            top = self.model.with_evidence(top)
            ids[answerable], scores[answerable] = top.ids, top.scores
        proposed = (ids >= 0).sum(axis=1)
        missing = proposed < k
        if missing.any():
            self._fill_from_popular(ids, scores, masked, np.flatnonzero(missing), k)
        return self.external_batch(
            np.arange(n).astype(str).astype(object), TopK(ids, scores), ~answerable, proposed
        )

    def _fill_from_popular(
        self,
        ids: np.ndarray,
        scores: np.ndarray,
        exclude: sparse.csr_array,
        rows: np.ndarray,
        k: int,
    ) -> None:
        """Complete rows that have -1 slots with the most popular items not seen and not listed.
        Below a model's items a fill is scored as a pipeline scores its popularity fill
        (``retrieval.merge.append_below``): 1 below both 0 and the row's lowest model score,
        0.001 lower per place in the popular list, a score that only orders (the README's
        meaning of ``score``); a row the model left empty keeps popularity's own scores."""
        listed = ids[rows]
        r, c = np.nonzero(listed >= 0)
        block = exclude[rows] + sparse.csr_array(
            (np.ones(len(r), np.float32), (r, listed[r, c])), shape=(len(rows), len(self.items))
        )
        pop = self.popular.recommend(
            np.zeros(len(rows), np.int64), k, exclude=block.tocsr(), blocked=self.blocked
        )
        for j, row in enumerate(rows):  # a row-wise splice of two short arrays, length k each
            have = ids[row][ids[row] >= 0]
            take = pop.ids[j][pop.ids[j] >= 0][: k - len(have)]
            end = len(have) + len(take)
            ids[row, len(have) : end] = take
            if len(have):  # fills rank below model items
                floor = min(0.0, float(scores[row, len(have) - 1]))
                scores[row, len(have) : end] = floor - 1.0 - np.arange(1, len(take) + 1) * 1e-3
            else:
                scores[row, :end] = pop.scores[j][: len(take)]

    def answer(
        self,
        user_ids: Sequence[str] | np.ndarray,
        k: int,
        *,
        extra_seen: Sequence[Collection[str]] | None = None,
        recent: Sequence[Sequence[str]] | None = None,
        context: Sequence[Mapping[str, Any]] | None = None,
        rules: Sequence[Any] = (),
        diversity: float | None = None,
        categories: Sequence[str] = (),
        include_seen: bool | None = None,
        profiles: Sequence[Mapping[str, Any] | None] | None = None,
        history: Sequence[Sequence[str]] | None = None,
    ) -> Answer:
        """The serving entry point (same as ``Pipeline.answer``): known users from the model,
        unknown users with a profile from the model's user tower (tier ``profile``, a model
        with one: ``needs_profile``; pooled in: their items since training, ``history``, then
        ``recent``, newest first, so latest last; ``extra_seen`` is only masked), visitors
        with recent items from their own items in that same order (if the model scores
        histories; ``extra_seen`` again only masked), as are known users the model has nothing
        for, their training items ahead, the rest from popularity.
        ``context`` is accepted for interface parity (a shadow model may be asked what a
        pipeline was); a single model ignores it, as a model without a user tower ignores
        ``profiles``.
        Business rules, categories and diversity need the catalogue a pipeline carries:
        NeedsPipeline (a ValueError) here."""
        if rules or diversity or categories or include_seen:
            raise NeedsPipeline(
                "rules, categories, diversity and include_seen need a pipeline deployment "
                "(recsmith train --pipeline), which knows the catalogue"
            )
        del context
        started = time.perf_counter()
        user_ids = np.asarray(user_ids, dtype=object)
        n = len(user_ids)
        seen = [
            (list(extra_seen[i]) if extra_seen else [])
            + (list(recent[i]) if recent else [])
            + (list(history[i]) if history else [])
            for i in range(n)
        ]
        # the user's own items since training, oldest first: stored, then ``recent`` (newest
        # first); what a user tower or a sequence model reads, never ``extra_seen``
        own = [
            [*(history[i] if history else ()), *reversed(recent[i] if recent else ())]
            for i in range(n)
        ]
        recs, profiled = self._recommend(user_ids, k, seen, profiles, own)
        # a known user the model proposes nothing for is answered by popularity alone: say so
        tiers = [
            "popular" if f or src[:1] == [[FILL]] else "profile" if p else "personalised"
            for f, p, src in zip(recs.fallback, profiled.tolist(), recs.sources, strict=True)
        ]
        sources = recs.sources
        # before popularity, the items met since training (stored or ``recent``): a visitor's,
        # also when all are stored (the online state emptied by a restart or an eviction, or
        # the events imported), and a known user's whose training items led the model nowhere
        # (no neighbour) while newer ones may (its whole history is scored then, training items
        # too, and none of it is listed); unknown ids alone fall back (``recommend_for_items``)
        visitors = [i for i in range(n) if tiers[i] == "popular" and own[i]]
        if visitors and self.model.scores_histories:
            by_items = self.recommend_for_items(
                [own[i] for i in visitors],
                k,
                users=self.users.to_index(user_ids[visitors]),
                exclude=[seen[i] for i in visitors],
            )
            for j, i in enumerate(visitors):
                if not by_items.fallback[j]:
                    recs.item_ids[i], recs.scores[i] = by_items.item_ids[j], by_items.scores[j]
                    tiers[i] = "session"
                    sources[i] = by_items.sources[j]
        mixed = np.asarray(
            [
                t in ("personalised", "profile") and s[-1:] == [[FILL]]
                for t, s in zip(tiers, sources, strict=True)
            ],
            bool,
        )
        return Answer(
            recs,
            tiers,
            sources,
            {"model": time.perf_counter() - started},
            notes=with_fill_notes([], mixed),
        )

    def similar_items(self, item_id: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Items most similar to ``item_id`` (external ids, scores); KeyError if unknown."""
        return self.similar_by(self.model, item_id, k)

    def similar_by(self, model: Recommender, item_id: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``similar_items`` answered by ``model`` (which shares this bundle's item indices),
        the available ones only. An item the model scores exactly 0 where that means no evidence
        (``zero_is_no_evidence``: EASE, no path in the co-occurrence graph) is no neighbour and
        is left out, as item-kNN's lists leave out what no neighbour points to: the list is then
        shorter than ``k`` (a tie at 0 is the catalogue's first items in index order, not
        similar ones)."""
        idx = self.items.to_index([item_id])
        if idx[0] < 0:
            raise KeyError(item_id)
        return shown(
            lambda n: self.external(model.with_evidence(model.similar_items(idx, n)), 0),
            k,
            self.items,
            self.available,
        )

    def together(self, item_id: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Frequently bought/viewed together: needs a co-occurrence model (LookupError if none)."""
        if self.model.name != "cooccurrence":
            raise LookupError(
                f"the deployed model is {self.model.name}, not cooccurrence; to enable /together "
                "train one (recsmith train --model cooccurrence) or a pipeline with a "
                'co-occurrence source ([[retrieval.sources]] model = "cooccurrence")'
            )
        return self.similar_items(item_id, k)

    def trending_items(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """A single model has no trending source: the popular list stands in."""
        return self.popular_items(k)

    def popular_items(
        self, k: int, *, exclude: Collection[str] = ()
    ) -> tuple[np.ndarray, np.ndarray]:
        top = self.popular.recommend(
            np.zeros(1, np.int64),
            k,
            exclude=self.exclusions(np.array([-1]), [exclude]),
            blocked=self.blocked,
        )
        return self.external(top, 0)

    def external(self, top: TopK, row: int) -> tuple[np.ndarray, np.ndarray]:
        """One top-k row as (external item ids, scores), empty slots dropped."""
        valid = top.ids[row] >= 0
        return self.items.to_external(top.ids[row][valid]), top.scores[row][valid]

    # ---- persistence ------------------------------------------------------------------------

    def save(self, path: Path) -> None:
        """Write the bundle to ``path`` all at once (``recsmith.atomic_dir``): a failure leaves
        whatever ``path`` held before, never a directory that looks like a model and does not
        load."""
        with atomic_directory(path) as staging:
            self.write(staging)

    def write(self, path: Path) -> None:
        """``manifest.json``, ``ids/``, ``seen/``, and ``model/`` + ``fallback/`` (``.npy``
        files, no pickle) into the existing directory ``path``, file by file: ``save`` for a
        whole bundle, this for a pipeline, which adds its own files before the directory goes
        live. Always the current format, whatever format the bundle was loaded from."""
        self.model.save(path / "model")
        self.popular.save(path / "fallback")
        users, items = self.users.to_array(), self.items.to_array()
        save_arrays(
            path / "ids",
            {
                "users": users,
                "items": items,
                "users_order": sort_order(users),
                "items_order": sort_order(items),
            },
        )
        save_arrays(path / "seen", sparse_to_arrays("seen_", self.seen))
        manifest = {**self.manifest, "format_version": FORMAT_VERSION}
        (path / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> ModelBundle:
        manifest = read_manifest(path)
        check_parts(path)
        model = model_class(manifest["model"]).load(path / "model")
        popular = Popular.load(path / "fallback")
        users, items = read_ids(path)
        seen = sparse_from_arrays("seen_", read_arrays(path / "seen", path / "seen.npz"))
        return cls(model, users, items, format_checked(seen), popular, manifest)


#: What every release directory holds beside its manifest (a pipeline's bundle too), each with
#: the format-1 archive that stands for it: a partial copy lacking one failed deep in a loader
#: with a bare "[Errno 2] No such file or directory: 'model/model/model.json'".
_PARTS = (
    ("model/model.json", None),
    ("fallback/model.json", None),
    ("ids", "ids.npz"),
    ("seen", "seen.npz"),
)


def _reversed_rows(rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row, item) pairs of lists oldest first (``rows`` nondecreasing) → the same lists
    newest first, as ``newest_first`` reads them."""
    order = np.lexsort((-np.arange(len(rows)), rows))
    return rows[order], cols[order]


def check_parts(path: Path) -> None:
    """Raise a ValidationError naming ``--model-dir``, ``path`` and the first missing part
    unless ``path`` holds every part of a release (a few ``stat`` calls: cheap enough for
    ``serve`` to ask before it starts)."""
    for part, archive in _PARTS:
        if not (path / part).exists() and not (archive and (path / archive).exists()):
            raise ValidationError(
                "--model-dir",
                f"{path} is incomplete: {part} is missing (a partial copy? copy the whole "
                "directory, or train it again)",
            )


def read_ids(path: Path) -> tuple[IdMap, IdMap]:
    """The (users, items) id maps of the release in ``path``: in format 2 (marked by the sort
    orders saved beside the ids, which lookups no longer read) over the mapped ids (shared by
    every worker, ``IdMap.mapped``), in format 1 as Python strings (a private copy per
    process, as before)."""
    ids = read_arrays(path / "ids", path / "ids.npz")
    if "users_order" in ids:
        return IdMap.mapped(ids["users"]), IdMap.mapped(ids["items"])
    return IdMap(ids["users"].astype(object)), IdMap(ids["items"].astype(object))


#: Set (``every_item_shown``) while an explanation reads a list as its source ranks it.
_EVERY_ITEM: ContextVar[bool] = ContextVar("every_item_shown", default=False)


@contextmanager
def every_item_shown() -> Iterator[None]:
    """Within the block, ``shown`` lets every item be shown: what ``?explain=true`` on an item
    list reads to give each item its rank in the source's own list, unavailable items counted.
    A context variable, so a concurrent request in another thread or task is not affected."""
    token = _EVERY_ITEM.set(True)
    try:
        yield
    finally:
        _EVERY_ITEM.reset(token)


def shown(
    fetch: Callable[[int], tuple[np.ndarray, np.ndarray]],
    k: int,
    items: IdMap,
    available: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The first ``k`` items of ``fetch(n)``'s list (external ids, scores) that ``available``
    (by item index) lets be shown: the item lists obey availability as user lists do.
    Over-fetches, growing until ``k`` are found or the list runs out."""
    if _EVERY_ITEM.get():
        return fetch(k)
    want = k
    while True:
        ids, scores = fetch(want)
        rows = items.to_index(ids)
        ok = np.where(rows >= 0, available[np.maximum(rows, 0)], True)
        if ok.sum() >= k or len(ids) < want:
            return ids[ok][:k], scores[ok][:k]
        want *= 4


def read_manifest(path: Path) -> dict[str, Any]:
    """``path/manifest.json`` of a model or pipeline directory; a missing one is
    FileNotFoundError and an unreadable one a ValidationError naming the file, never a bare
    decoder traceback."""
    manifest = path / "manifest.json"
    if not manifest.is_file():
        raise FileNotFoundError(f"not a model directory (no manifest.json): {path}")
    try:
        meta = json.loads(manifest.read_bytes())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError("--model-dir", f"{manifest} is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise ValidationError("--model-dir", f"{manifest} is not a recsmith manifest")
    fmt = meta.get("format_version")
    if type(fmt) is not int or fmt not in SUPPORTED_FORMATS:  # ``True == 1`` is no format
        raise ValidationError("--model-dir", _unsupported_format(path, fmt, meta))
    if not isinstance(meta.get("version"), str):
        raise ValidationError("--model-dir", f"{manifest} is not a recsmith manifest (no version)")
    return meta


def _unsupported_format(path: Path, fmt: object, meta: Mapping[str, Any]) -> str:
    """Why a manifest's ``format_version`` cannot be read, and what to do: the value as written
    (``"2"``, a string, read as plain ``2`` looked supported), the recsmith that wrote it, the
    formats this one reads, and the way out (retrain here, or load it where it was made)."""
    newer = type(fmt) is int and fmt > FORMAT_VERSION
    writer = meta.get("recsmith_version")
    made = f" (written by recsmith {writer})" if isinstance(writer, str) else ""
    readable = ", ".join(map(str, SUPPORTED_FORMATS))
    hint = (
        "a newer recsmith wrote it: upgrade, or retrain it with this one (`recsmith train`)"
        if newer
        else "retrain it with this recsmith (`recsmith train`)"
    )
    return (
        f"{path}: unsupported model format {fmt!r}{made}; recsmith {__version__} reads formats "
        f"{readable}: {hint}"
    )
