"""Pipeline: the trained stages behind the same interface as ``ModelBundle``, plus the fallback
chain. A request goes retrieve → rank → re-rank; the response says which tier answered:

``personalised`` (a known user) → ``session`` (an unknown visitor with recent items) →
``segment`` (a user with a profile and no events: popularity among users like them,
``segments.popularity``, within the requested categories when the request names some and the
segments had any of their items) → ``category`` (popularity within the requested categories) →
``popular`` (nobody knows anything). Popular items sit under every
list (they fill what the sources could not), and everything passes the same rules: no tier
ever returns an item the user has, the request excludes, or a rule filters out — a list may end
short rather than break a rule.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any, ClassVar

import numpy as np
from scipy import sparse

from recsmith.bundle import (
    FILL,
    TIERS,
    Answer,
    BatchRecommendations,
    ModelBundle,
    every_item_shown,
    shown,
    with_fill_notes,
)
from recsmith.events.schema import Item
from recsmith.explain.trace import Trace
from recsmith.exploration.contextual import source_rows
from recsmith.exploration.explorer import Explorer, ExploreRequest
from recsmith.fairness.stage import build_fairness
from recsmith.models.base import Recommender
from recsmith.models.content import ContentBased
from recsmith.models.topk import TopK
from recsmith.models.transitions import Transitions
from recsmith.pipeline.anchors import anchor_items
from recsmith.pipeline.catalog_content import CatalogContent
from recsmith.pipeline.catalog_growth import (
    TrainedWidth,
    cold_reach,
    grown_bundle,
    grown_state,
    new_records,
)
from recsmith.pipeline.config import PipelineConfig
from recsmith.pipeline.item_attributes import ItemAttributes
from recsmith.pipeline.item_titles import display_names, with_titles
from recsmith.pipeline.training import build_sources, propose
from recsmith.ranking import row_kernel
from recsmith.ranking.features import FeatureState, candidate_features
from recsmith.ranking.ltr import LambdaMARTRanker
from recsmith.rerank.catalog_view import ItemTable
from recsmith.rerank.reranker import Reranker
from recsmith.rerank.rules import FilterRule, Rule
from recsmith.rerank.window import active_rules
from recsmith.retrieval.ann import ANNSource, ItemIndex
from recsmith.retrieval.candidates import Candidates
from recsmith.retrieval.merge import append_below, merge
from recsmith.retrieval.queries import Queries
from recsmith.retrieval.sources import CategoryPopular, Proposals, StaticSource, widest_row
from recsmith.segments.popularity import SegmentPopularity
from recsmith.sparse_rows import csr_of_rows, newest_first

log = logging.getLogger(__name__)

#: Called with the ranker's feature rows [n, features] and each row's query index [n].
FeatureTap = Callable[[np.ndarray, np.ndarray], None]
#: The name of the popularity source under every list, and how many extra items it brings (rules
#: may filter some out).
FALLBACK = FILL
FALLBACK_EXTRA = 20
#: The fallback's name where popularity within the users' profile segments fills the lists.
SEGMENT_FALLBACK = "segment_popular"
#: The sources that fill lists from popularity (global, segments', the requested categories').
FILLERS = (FALLBACK, SEGMENT_FALLBACK, CategoryPopular.name)


class Pipeline:
    """See module docstring. ``bundle`` carries the primary model, id maps, seen items and the
    popularity fallback; the pipeline adds the other sources, the ranker and re-ranking."""

    #: ``answer`` ignores ``history`` (``ModelBundle.reads_history``): the sources read the
    #: stored items from ``extra_seen``, so the coalescer's flush builds no history for it
    reads_history: ClassVar[bool] = False

    def __init__(
        self,
        config: PipelineConfig,
        bundle: ModelBundle,
        models: dict[str, Recommender],
        ranker: LambdaMARTRanker | None,
        state: FeatureState,
        attrs: ItemAttributes,
        recent: sparse.csr_array,
        items: list[Item],
        indexes: Mapping[str, ItemIndex] | None = None,
        segments: SegmentPopularity | None = None,
    ) -> None:
        self.config = config
        #: popularity within profile segments, built at training when profiles were given
        self.segments = segments
        self.bundle = bundle
        self.models = models
        self.ranker = ranker
        self.state = state
        self.attrs = attrs
        self.recent = recent
        #: a source reads the order of what a user met since training (``Queries.latest``):
        #: one answering known users from their history (``use = "auto"``)
        self.reads_order = any(
            s.use == "auto"
            and isinstance(m := models.get(s.name), Transitions)
            and m.follows_latest
            for s in config.retrieval.sources
        )
        #: a source weighs a visitor's recent items by their places (EASE's ``recency``):
        #: ``Queries.latest`` is then built for visitors' rows with recent items too
        self.weighs_recency = any(
            (m := models.get(s.name)) is not None and m.weighs_recency
            for s in config.retrieval.sources
        )
        self.items_catalog = items
        self.quotas = [s.quota for s in config.retrieval.sources]
        #: now, for the moment a served query stands for (its hour and day of week): a request
        #: is answered for the time it is asked, not the time the model was trained
        self.clock: Callable[[], float] = time.time
        #: item-to-item matrices of the sources whose items a reason can trace to an anchor
        self.anchor_matrices = {
            s.name: matrix
            for s in config.retrieval.sources
            if s.name in models and (matrix := models[s.name].item_to_item) is not None
        }
        # the compiled feature columns and anchor search (``ranking.row_kernel``) are built or
        # found in the cache on a background thread now, as the ranker's trees are: never on a
        # request, which numpy answers until they load
        row_kernel.start()
        self.weights = [s.weight for s in config.retrieval.sources]
        #: items the models were trained on: indices past it joined later (``catalog_growth``)
        self.n_trained = len(bundle.items)
        self.table = (
            ItemTable.from_items(items, bundle.items)
            if items
            else ItemTable.unknown(len(bundle.items))
        )
        self.titles = with_titles(np.zeros(0, object), items, bundle.items)
        #: the catalogue's content vectors where they are needed (``_needs_content``): built at
        #: load, so the first item created after training does not pay for the whole catalogue
        self.content: CatalogContent | None = (
            CatalogContent.of(items, bundle.items) if items and self._needs_content() else None
        )
        self.catalog_stamp = 0  # write time of the latest catalogue change applied (µs)
        self._assemble(indexes)

    def _assemble(self, indexes: Mapping[str, ItemIndex] | None) -> None:
        """The parts built on the item index: sources, the popularity fallbacks and the
        re-ranker (at load, and again when the index grows). Model-backed sources of a grown
        pipeline see queries cut to the trained items (``TrainedWidth``)."""
        sources = build_sources(
            self.config.retrieval.sources,
            self.models,
            self.attrs,
            self.config.retrieval.ann_min_items,
            indexes,
        )
        grown = len(self.bundle.items) > self.n_trained
        self.sources = [
            TrainedWidth.of(s, self.n_trained) if grown and not isinstance(s, StaticSource) else s
            for s in sources
        ]
        # items that joined after training have no popularity: never proposed by it
        popular = np.full(len(self.bundle.items), -np.inf, np.float32)
        popular[: self.n_trained] = self.bundle.popular.item_scores_
        self.fallback = StaticSource(FALLBACK, popular)
        self.category_popular = CategoryPopular(
            popular, self.table.category_sets, self.table.category_names
        )
        self._popular = popular
        self._build_rerank()

    def _build_rerank(self) -> None:
        """The re-ranker and the explorer from ``config.rerank`` / ``config.explore``, then one
        view per configured placement (``placed``)."""
        rerank = self.config.rerank
        self.reranker = Reranker(
            self.table,
            self.bundle.items,
            rules=tuple(active_rules(rerank.all_rules(), self.rules_at or datetime.now(UTC))),
            diversity=rerank.diversity or None,
            similarity=self.content.vectors
            if rerank.similarity == "content" and self.content is not None
            else "category",
            fairness=build_fairness(self.table, popularity=self._popular, **rerank.fairness_keys()),
        )
        self.explorer = (  # ``[explore]``: applied after re-ranking, rules already applied
            Explorer(
                self.config.explore,
                self.reranker.rules,
                self.bundle.items,
                self.attrs.created_ts,
                np.maximum(self._popular, 0.0),
            )
            if self.config.explore is not None
            else None
        )
        self.placed: dict[str, Pipeline] = {}
        for name, placement in self.config.placements.items():
            if not placement.rerank and placement.explore is None:
                continue  # its own k, release or bandit only: it re-ranks as the pipeline
            view = copy.copy(self)
            view.config = self.config.for_placement(name)
            view._build_rerank()  # the view's own re-ranker and explorer; it has no placements
            self.placed[name] = view

    #: the instant whose time-windowed rules the re-rankers apply (None: when they are built);
    #: ``merchandising.live`` rebuilds at each window edge (``with_rules``)
    rules_at: datetime | None = None
    #: which live rules and windows re-rank here ("": the release's own file): response-cache
    #: keys tell their lists apart by it
    live_rules = ""

    def with_rules(self, config: PipelineConfig, at: datetime, tag: str) -> Pipeline:
        """This release re-ranking by ``config`` (the same release's config with other rules:
        live rules from the store) and the rules in force at ``at``, tagged ``tag``. A shallow
        copy, as ``with_catalog``: models and catalogue are shared."""
        out = copy.copy(self)
        out.config, out.rules_at, out.live_rules = config, at, tag
        out._build_rerank()
        return out

    def for_placement(self, placement: str | None) -> Pipeline:
        """This pipeline as ``placement`` serves it: a view sharing everything but re-ranking
        and exploration when ``[placements.NAME]`` configures it, else the pipeline itself."""
        return self.placed.get(placement, self) if placement else self

    def with_catalog(self, items: Sequence[Item], stamp: int) -> Pipeline:
        """This release with catalogue changes applied: each record in ``items`` sets its item's
        availability and properties (``ItemTable.with_updates``) and title, so an item marked
        unavailable or repriced through the API is filtered at once instead of at the next
        training; items the release has never seen join its item index (``_with_new_items``).
        ``stamp`` (the store's write time of the changes) tells response-cache keys apart. A
        shallow copy: the models, ranker and state are shared, and requests already running on
        this object finish on it."""
        fresh = new_records(items, self.bundle.items)
        out = self._with_new_items(fresh) if fresh else copy.copy(self)
        out.table = out.table.with_updates(items, out.bundle.items)
        out.titles = with_titles(out.titles, items, out.bundle.items)
        out.catalog_stamp = stamp
        if out.placed:  # each placement's view must see the same catalogue: all rebuilt
            out._build_rerank()
        else:
            out.reranker = replace(out.reranker, table=out.table)
        return out

    def _with_new_items(self, fresh: list[Item]) -> Pipeline:
        """A copy whose item index has the items of ``fresh`` (records of ids it lacks) appended
        (see ``catalog_growth``): once per catalogue batch that brings new ids."""
        out = copy.copy(self)
        out.bundle = grown_bundle(self.bundle, [it.item_id for it in fresh])
        ids = out.bundle.items
        out.table = self.table.with_new_items(fresh, ids)
        out.attrs = self.attrs.with_new_items(fresh, ids, out.table)
        out.state = grown_state(self.state, out.attrs)
        out.items_catalog = [*self.items_catalog, *fresh]
        out.titles = with_titles(self.titles, fresh, ids)
        if self._needs_content():
            content = self.content or CatalogContent.of([], self.bundle.items)
            out.content = content.grown(fresh, ids)
        out._assemble(self.indexes)
        log.info("item index grown by %d new item(s) to %d", len(fresh), len(ids))
        return out

    def _needs_content(self) -> bool:
        """Content vectors are kept for content similarity in re-ranking, and for the similar
        lists of items added after training when the pipeline has a content source."""
        return self.config.rerank.similarity == "content" or any(
            isinstance(m, ContentBased) for m in self.models.values()
        )

    @property
    def indexes(self) -> dict[str, ItemIndex]:
        """The approximate-nearest-neighbour index of each source that has one (saved with the
        artifact)."""
        bare = (s.source if isinstance(s, TrainedWidth) else s for s in self.sources)
        return {s.name: s.index for s in bare if isinstance(s, ANNSource)}

    @property
    def version(self) -> str:
        return self.bundle.version

    @property
    def manifest(self) -> dict[str, Any]:
        return self.bundle.manifest

    @property
    def items(self) -> Any:
        return self.bundle.items

    # ---- the request path -------------------------------------------------------------------

    def queries(
        self,
        user_ids: np.ndarray,
        extra_seen: Sequence[Collection[str]] | None,
        recent: Sequence[Sequence[str]] | None,
        context: Sequence[Mapping[str, Any]] | None,
        include_seen: bool = False,
    ) -> Queries:
        """Who asks. 'Recent' rows: a known user's latest training items plus ``recent`` (what
        they did since, from the online state, or what the request says they just viewed).
        ``exclude`` rows: training items, ``extra_seen`` (everything the store has for them)
        and ``recent``: nothing the user has had comes back. With ``include_seen`` (repeat
        purchases) only ``extra_seen`` is excluded: the caller passes just what it must never
        show. ``latest`` rows: ``recent`` alone, in its order (newest first), for a source that
        reads order, built for known users' rows, and for visitors' where a source weighs
        recency (EASE's ``recency``; a known user's are never weighed; None when no row has
        any)."""
        n = len(user_ids)
        for name, lists in (("extra_seen", extra_seen), ("recent", recent)):
            if lists is not None and len(lists) != n:
                raise ValueError(f"{name}: {len(lists)} lists for {n} users")
        idx = self.bundle.users.to_index(user_ids)
        # each list's ids are looked up once: ``recent``'s pairs serve the recent rows and the
        # exclusions both (no per-user concatenated copies: a CSR built from pairs does not
        # care in which order they come)
        now_rows, now_cols = self.bundle.item_pairs(recent if recent is not None else ())
        recent_rows = csr_of_rows(self.recent, idx, len(self.bundle.items), now_rows, now_cols)
        also = None if include_seen else (now_rows, now_cols)
        exclude = self.bundle.exclusions(np.where(include_seen, -1, idx), extra_seen, also=also)
        ctx = tuple(dict(c) for c in context) if context is not None else tuple({} for _ in idx)
        now = np.full(n, int(self.clock() * 1_000_000), np.int64)
        ordered = None  # ~20-40 µs a request: only for the queries that read it
        if (self.reads_order or self.weighs_recency) and len(now_rows):
            # known users' where a source reads order, visitors' where one weighs recency
            if self.reads_order and self.weighs_recency:
                rows, cols = now_rows, now_cols
            else:
                reads = (idx[now_rows] < 0) == self.weighs_recency
                rows, cols = now_rows[reads], now_cols[reads]
            if len(rows):
                ordered = newest_first(n, len(self.bundle.items), rows, cols)
        return Queries(idx, recent_rows, exclude, ctx, now, ordered)

    def candidates(
        self,
        queries: Queries,
        k: int,
        timings: dict[str, float] | None = None,
        tap: FeatureTap | None = None,
    ) -> Candidates:
        """Retrieve, then rank (or keep the fused retrieval order), best first per query.
        Stage durations are added to ``timings`` when given (for the per-stage metrics);
        ``tap`` is handed the ranker's feature rows and each row's query (feature drift:
        ``monitoring.features``)."""
        return self._ranked(queries, timings, tap)[0]

    def _ranked(
        self,
        queries: Queries,
        timings: dict[str, float] | None = None,
        tap: FeatureTap | None = None,
        filler: int | None = None,
    ) -> tuple[Candidates, Proposals | None]:
        """``candidates``, and with ``filler`` (a depth) the popularity filler's proposals at
        that depth (``self.fallback.retrieve(queries, filler)``), retrieved in the same pass as
        the static sources (``propose``)."""
        started = time.perf_counter()
        # with a ranker the fused order only breaks its ties (``Candidates.rescored``); a tap
        # still gets the rows in that order (its rate limit keeps the first ones)
        fused = self.ranker is None or tap is not None
        asked = list(zip(self.sources, self.quotas, strict=True))
        proposals = propose(asked if filler is None else [*asked, (self.fallback, filler)], queries)
        everyone = None if filler is None else proposals.pop()
        names = [s.name for s in self.sources]
        cands = merge(proposals, names, len(queries), queries.n_items, self.weights, ordered=fused)
        retrieved = time.perf_counter()
        if self.ranker is not None and len(cands):
            features = candidate_features(self.state, queries, cands)
            if tap is not None:
                tap(features, cands.query)
            cands = cands.rescored(self.ranker.score(features))
        elif not fused:  # nothing to rank: the fused order is the order
            cands = cands.with_scores(cands.score)
        if timings is not None:
            timings["retrieval"] = retrieved - started
            timings["ranking"] = time.perf_counter() - retrieved
        return cands, everyone

    def top_k(
        self,
        user_ids: Sequence[str] | np.ndarray,
        k: int,
        *,
        extra_seen: Sequence[Collection[str]] | None = None,
        recent: Sequence[Sequence[str]] | None = None,
        context: Sequence[Mapping[str, Any]] | None = None,
        timings: dict[str, float] | None = None,
        rules: Sequence[Rule] = (),
        diversity: float | None = None,
        categories: Sequence[str] = (),
        include_seen: bool | None = None,
        profiles: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> tuple[TopK, np.ndarray, Candidates]:
        """Internal top-k per user, the tier index per query (into ``TIERS``), and the final
        candidates. ``categories``: only items in one of them, and popularity within them (not
        the global list) answers whom nothing else can. ``include_seen`` (None: the pipeline's
        ``retrieval.include_seen``) keeps the items users have (see ``queries``). ``profiles``:
        per user, a profile read from the store (None: the release's own, if any), whose
        segments' popularity fills the list (``segment_fallback``)."""
        tier, final, _, _, _ = self._top_k(
            user_ids,
            k,
            extra_seen=extra_seen,
            recent=recent,
            context=context,
            timings=timings,
            rules=rules,
            diversity=diversity,
            categories=categories,
            include_seen=include_seen,
            profiles=profiles,
        )
        n = len(user_ids)
        ids = np.full((n, k), -1, np.int32)
        scores = np.full((n, k), -np.inf, np.float32)
        rank = np.arange(len(final)) - final.bounds()[final.query]
        ids[final.query, rank] = final.items
        scores[final.query, rank] = _served_scores(final, tier)
        return TopK(ids, scores), tier, final

    def _top_k(
        self,
        user_ids: Sequence[str] | np.ndarray,
        k: int,
        *,
        extra_seen: Sequence[Collection[str]] | None,
        recent: Sequence[Sequence[str]] | None,
        context: Sequence[Mapping[str, Any]] | None,
        timings: dict[str, float] | None,
        rules: Sequence[Rule],
        diversity: float | None,
        categories: Sequence[str],
        include_seen: bool | None,
        explore: ExploreRequest | None = None,
        trace: Trace | None = None,
        source: str | None = None,
        profiles: Sequence[Mapping[str, Any] | None] | None = None,
        feature_tap: FeatureTap | None = None,
    ) -> tuple[np.ndarray, Candidates, Queries, np.ndarray | None, np.ndarray]:
        """``top_k``'s tiers and final rows (each query's list in order) with the queries it
        built (``answer`` traces reasons to their items), when ``explore`` is given to an
        exploring pipeline each final row's propensity, and per query how many listed items a
        source proposed (the rest are popularity's fill). ``trace`` (``?explain=true`` only)
        keeps what each stage saw (``explain.trace``). A known user whose list popularity filled
        whole (the sources proposed nothing the rules kept) is tier ``popular``, as is one a
        single model has nothing for."""
        user_ids = np.asarray(user_ids, dtype=object)
        keep = self.config.retrieval.include_seen if include_seen is None else include_seen
        queries = self.queries(user_ids, extra_seen, recent, context, keep)
        has_recent = queries.recent.indptr[1:] > queries.recent.indptr[:-1]
        popular = TIERS.index("category" if categories else "popular")
        tier = np.where(queries.users >= 0, 0, np.where(has_recent, 1, popular))
        want = k + FALLBACK_EXTRA  # the filler's depth (popular items under every list)
        cands, everyone = self._ranked(queries, timings, feature_tap, None if categories else want)
        if (tier >= 2).any():  # nobody known: popularity (a batch of known users keeps every row)
            cands = cands.where(tier[cands.query] < 2)
        if source is not None:  # a contextual arm (``exploration.contextual``): its source's rows
            cands = cands.where(source_rows(cands, source))
        found = np.bincount(cands.query, minlength=len(user_ids)) > 0
        # popular items under every list: the fallback tier, and what fills lists the sources
        # could not, all passing through the same rules below
        cold = (queries.users < 0) & ~found
        fillers, segmented = self.segment_fallback(
            user_ids, queries, want, profiles, cold, everyone, categories
        )
        for filler, name in fillers:
            cands = append_below(cands, filler, name)
        if categories:
            rules = [*rules, FilterRule.model_validate({"property": "category", "in": categories})]
        started = time.perf_counter()
        explorer = self.explorer if explore is not None else None
        depth = explorer.depth(k) if explorer is not None else k
        final = self.finalise(cands, queries, depth, rules, diversity)
        reranked = final
        propensity = None
        if explorer is not None and explore is not None:
            explored = explorer.explore(final, cands, queries, k, rules, self.table, explore)
            final, propensity = explored.rows, explored.propensity
        if trace is not None:
            trace.keep(queries, cands, tuple(rules), diversity, depth, reranked, final)
        if timings is not None:
            timings["rerank"] = time.perf_counter() - started
        tier[(tier == 1) & ~found] = popular  # the session's items led nowhere
        tier[(tier == popular) & segmented] = TIERS.index("segment")
        proposed = _proposed(final)
        tier[(tier == 0) & (proposed == 0) & (np.diff(final.bounds()) > 0)] = popular
        return tier, final, queries, propensity, proposed

    def segment_fallback(
        self,
        user_ids: np.ndarray,
        queries: Queries,
        depth: int,
        profiles: Sequence[Mapping[str, Any] | None] | None,
        cold: np.ndarray,
        everyone: Proposals | None = None,
        categories: Sequence[str] = (),
    ) -> tuple[list[tuple[Proposals, str]], np.ndarray]:
        """The popularity beneath every list (proposals with their source names) and which
        queries took it from their profile segments: global popularity (within ``categories``
        when the request names some), unless the release has segments and a ``cold`` query (no
        events, nothing the sources found) has a profile (given, or the release's own), whose
        segments' popularity (within the categories) is then its whole list. Within categories
        the segments answer only where they had any of the categories' items: with none, their
        shrunken scores there are the global ones (``SegmentPopularity.had_any``), and the
        category tier says so. Lists the sources answered keep the global filler, and a batch
        without such a user skips the segment pass (one pass over the catalogue per segment
        combination) entirely."""
        name = FALLBACK
        if categories:
            source = self.category_popular.within(categories, depth + widest_row(queries.exclude))
            # a category request takes every category's head: the rules' per-category cap and
            # the catalogue's unavailable items thin a pool cut to ``depth`` (one category's
            # head) short
            everyone = source.retrieve(queries, depth * len(categories))
            name = source.name
        elif everyone is None:  # else the filler at ``depth``, retrieved with the sources
            everyone = self.fallback.retrieve(queries, depth)
        if self.segments is None or not cold.any():
            return [(everyone, name)], np.zeros(len(user_ids), bool)
        codes = self.segments.codes_of(user_ids, profiles)
        segmented = cold & (codes >= 0).any(axis=1)
        within = None
        if categories and segmented.any():
            within = self.category_popular.members(categories)  # one pool a category
            segmented &= self.segments.had_any(codes, np.concatenate(within))
        if not segmented.any():
            return [(everyone, name)], segmented
        rows = np.flatnonzero(segmented)
        # a lone request (or a batch all of whose queries are cold) skips the sparse row
        # indexing of ``take`` (~0.5 ms for three matrices)
        asked = queries if len(rows) == len(queries) else queries.take(rows)
        own = self.segments.retrieve(asked, depth, codes[rows], within)
        return [
            (everyone.where(~segmented[everyone.query]), name),
            (own.renumbered(rows), SEGMENT_FALLBACK),
        ], segmented

    def needs_profile(self, user_id: str) -> bool:
        """Whether a profile read for ``user_id`` could change its list: the release has
        segments, and the user is neither known to the models nor profiled in the release (a
        profile written after training). Serving reads the store only then."""
        if self.segments is None:
            return False
        ids = np.asarray([user_id], dtype=object)
        return (
            bool(self.bundle.users.to_index(ids)[0] < 0)
            and not (self.segments.codes_of(ids) >= 0).any()
        )

    def finalise(
        self,
        cands: Candidates,
        queries: Queries,
        k: int,
        rules: Sequence[Rule] = (),
        diversity: float | None = None,
    ) -> Candidates:
        """Re-ranking stage: configured and request rules, diversity, caps and pins, cut to ``k``
        (a request's ``diversity`` overrides the configured one)."""
        return self.reranker.rerank(cands, k, rules=rules, diversity=diversity, queries=queries)

    def recommend(
        self,
        user_ids: Sequence[str] | np.ndarray,
        k: int,
        *,
        extra_seen: Sequence[Collection[str]] | None = None,
        recent: Sequence[Sequence[str]] | None = None,
        context: Sequence[Mapping[str, Any]] | None = None,
    ) -> BatchRecommendations:
        """Same contract as ``ModelBundle.recommend`` (what the batch CLI calls)."""
        return self.answer(user_ids, k, extra_seen=extra_seen, recent=recent, context=context).lists

    def answer(
        self,
        user_ids: Sequence[str] | np.ndarray,
        k: int,
        *,
        extra_seen: Sequence[Collection[str]] | None = None,
        recent: Sequence[Sequence[str]] | None = None,
        context: Sequence[Mapping[str, Any]] | None = None,
        rules: Sequence[Rule] = (),
        diversity: float | None = None,
        categories: Sequence[str] = (),
        include_seen: bool | None = None,
        explore: ExploreRequest | None = None,
        trace: Trace | None = None,
        source: str | None = None,
        profiles: Sequence[Mapping[str, Any] | None] | None = None,
        feature_tap: FeatureTap | None = None,
        history: Sequence[Sequence[str]] | None = None,
    ) -> Answer:
        """Lists with the tier and the sources of every item; ``rules`` and ``diversity`` add to
        (or override) the configured re-ranking for this request; ``categories`` keeps only items
        in one of them, ``include_seen`` the items users have (see ``top_k``); ``trace``: see
        ``_top_k``; ``source``: only what that retrieval source proposed, popularity filling the
        rest (a contextual arm); ``profiles``: per user, a profile from the store, or None
        (see ``segment_fallback``); ``history``: accepted for parity with ``ModelBundle``
        (a user tower pools it), a pipeline's sources read those items from ``extra_seen``."""
        del history
        user_ids = np.asarray(user_ids, dtype=object)
        timings: dict[str, float] = {}
        tier, final, queries, propensity, proposed = self._top_k(
            user_ids,
            k,
            extra_seen=extra_seen,
            recent=recent,
            context=context,
            timings=timings,
            rules=rules,
            diversity=diversity,
            categories=categories,
            include_seen=include_seen,
            explore=explore,
            trace=trace,
            source=source,
            profiles=profiles,
            feature_tap=feature_tap,
        )

        # the final rows cut at the query bounds are the listed items, item for item (views of
        # one batch-wide array each: nothing writes to them in place): the lists, and the
        # anchors of their reasons, are named by one id lookup for the whole batch rather than
        # one per list (``ModelBundle.external_batch``: ~8 µs a user)
        bounds = final.bounds()
        cuts = list(pairwise(bounds.tolist()))
        anchor = anchor_items(final, queries.recent, self.anchor_matrices)
        named = self.bundle.items.to_external(np.concatenate([final.items, np.maximum(anchor, 0)]))
        listed = named[: len(final)]
        names = final.source_names()
        sources = [names[a:b] for a, b in cuts]
        whole = tier >= TIERS.index("category")  # popularity answered the whole list
        scores = _served_scores(final, tier)
        lists = BatchRecommendations(
            user_ids,
            [listed[a:b] for a, b in cuts],
            [scores[a:b] for a, b in cuts],
            whole & (queries.users < 0),  # as a single model's: unknown users' (``fallback``)
            sources,
        )
        anchors = np.where(anchor >= 0, named[len(final) :], None).tolist()
        per_source = dict(
            zip(final.sources, (final.source_ranks > 0).sum(axis=0).tolist(), strict=True)
        )
        anchored = [anchors[a:b] for a, b in cuts]
        shown: list[np.ndarray] = []  # an exploring pipeline's propensities, per query
        if propensity is not None and len(user_ids):
            shown = np.split(propensity, final.bounds()[1:-1])
        return Answer(
            lists,
            [TIERS[t] for t in tier],
            sources,
            timings,
            per_source,
            anchored,
            [p.tolist() for p in shown],
            # a personalised list popularity filled in part says so
            with_fill_notes(
                self.reranker.unmet(final, k), (tier == 0) & (proposed < np.diff(bounds))
            ),
        )

    def recommend_for_items(
        self, histories: Sequence[Collection[str]], k: int
    ) -> BatchRecommendations:
        """Lists for anonymous visitors known only by their items so far (the session tier).
        ``histories``: each visitor's items oldest first (a ``--sessions`` file's order, as
        ``ModelBundle.recommend_for_items`` reads them), handed on as ``recent``, newest first."""
        n = len(histories)
        # ids that no validated user can have (control characters are refused at the door)
        visitors = np.asarray([f"\x1fvisitor{i}" for i in range(n)], dtype=object)
        ans = self.answer(visitors, k, recent=[list(reversed(list(h))) for h in histories])
        return BatchRecommendations(
            np.arange(n).astype(str).astype(object),
            ans.lists.item_ids,
            ans.lists.scores,
            np.asarray([t in ("category", "segment", "popular") for t in ans.tiers]),
            ans.sources,
        )

    def _shown(
        self, fetch: Callable[[int], tuple[np.ndarray, np.ndarray]], k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """The item lists (similar, together, trending, popular) obey the live catalogue's
        availability like every user list does (``bundle.shown``)."""
        return shown(fetch, k, self.bundle.items, self.table.available)

    def cold_reach(self, item_ids: Sequence[str]) -> str | None:
        """How items of ``item_ids`` added after training reach lists (``catalog_growth``)."""
        arrivals = [s.name for s in self.config.retrieval.sources if s.kind == "new_arrivals"]
        return cold_reach(
            item_ids, self.bundle.items, self.n_trained, self.attrs.created_ts, arrivals
        )

    def display_names(self, item_ids: Sequence[str]) -> list[str]:
        """What reasons call these items: their catalogue titles, else their ids
        (``item_titles``)."""
        return display_names(self.titles, self.bundle.items, item_ids)

    def _trained_index(self, item_id: str) -> int | None:
        """The item's index when the models were trained on it; None for an item that joined
        after training (no model can list its neighbours); KeyError when it is unknown."""
        idx = int(self.bundle.items.to_index([item_id])[0])
        if idx < 0:
            raise KeyError(item_id)
        return idx if idx < self.n_trained else None

    def similar_items(self, item_id: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The primary model's neighbours; for an item added after training, its content
        neighbours when the pipeline keeps content vectors (a content source, or content
        similarity in re-ranking), else a LookupError saying why there is no list yet."""
        if self._trained_index(item_id) is not None:
            ids, scores = self._shown(lambda n: self.bundle.similar_items(item_id, n), k)
            if not _without_signal(scores) or not self._lacks_neighbours(item_id):
                return ids, scores  # a list, or one that availability alone emptied
            why = (
                f"item {item_id!r} has no neighbours in what model {self.version} learned (no "
                "interactions with it, or none it shares with another item)"
            )
        else:
            why = f"item {item_id!r} was added after model {self.version} was trained"
        if self.content is None:
            raise LookupError(
                f"{why}, and this pipeline has no content source to find similar items from its "
                "categories, tags and text; its similar items appear after the next training that "
                'sees events for it (or add a source [[retrieval.sources]] name = "content" '
                'model = "content" and retrain)'
            )
        return self._shown(lambda n: self._content_neighbours(item_id, n), k)

    def _lacks_neighbours(self, item_id: str) -> bool:
        """Whether the primary model itself has nothing on the item, every item allowed: a list
        that availability emptied or filled with zero scores is still the model's answer. Asked
        only when the shown list looks empty of signal, so a served list pays nothing for it."""
        with every_item_shown():
            return _without_signal(self.bundle.similar_items(item_id, 1)[1])

    def _content_neighbours(self, item_id: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` items closest to the item by content (``CatalogContent.neighbours``)."""
        assert self.content is not None
        rows, scores = self.content.neighbours(int(self.bundle.items.to_index([item_id])[0]), k)
        return self.bundle.items.to_external(rows), scores

    def _model_named(self, name: str) -> Recommender | None:
        return next((m for m in self.models.values() if m.name == name), None)

    def together(self, item_id: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Frequently bought together, from the pipeline's co-occurrence source."""
        model = self._model_named("cooccurrence")
        if model is None:
            raise LookupError(
                "this pipeline has no co-occurrence source; to enable /together add one to its "
                'TOML and retrain: [[retrieval.sources]] name = "together" model = "cooccurrence" '
                "quota = 50"
            )
        if self._trained_index(item_id) is None:
            raise LookupError(
                f"item {item_id!r} was added after model {self.version} was trained: no baskets "
                "with it were counted yet; its together list appears after the next training"
            )
        return self._shown(lambda n: self.bundle.similar_by(model, item_id, n), k)

    @property
    def has_trending(self) -> bool:
        """Whether ``trending_items`` comes from a trending source (else it is popularity)."""
        return self._model_named("trending") is not None

    def trending_items(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The trending source's list (popularity when the pipeline has none)."""
        model = self._model_named("trending")
        if model is None:
            return self.popular_items(k)
        return self._shown(
            lambda n: self.bundle.external(model.recommend(np.zeros(1, np.int64), n), 0), k
        )

    def popular_items(
        self, k: int, *, exclude: Collection[str] = ()
    ) -> tuple[np.ndarray, np.ndarray]:
        return self._shown(lambda n: self.bundle.popular_items(n, exclude=exclude), k)


def _without_signal(scores: np.ndarray) -> bool:
    """A neighbour list that says nothing: empty, or every score exactly 0 — what a model gives
    an item it saw no interaction of (zero factors, an empty co-occurrence row), whose "nearest"
    items would otherwise be the catalogue's first ones in index order."""
    return len(scores) == 0 or not np.any(scores)


def _proposed(final: Candidates) -> np.ndarray:
    """Per query of ``final``, how many of its rows a source proposed: not popularity's fill
    alone (``FILLERS``), which lists what the sources could not."""
    own = np.isin(np.asarray(final.sources, dtype=object), FILLERS, invert=True)
    by_source = (final.source_ranks[:, own] > 0).any(axis=1)
    return np.bincount(final.query[by_source], minlength=final.n_queries)


def _served_scores(final: Candidates, tier: np.ndarray) -> np.ndarray:
    """``final``'s scores, the rows of queries popularity answered whole (``tier`` category,
    segment or popular) with the filler's own score, as a single model serves such a list:
    the users who had the item (within the categories for ``category_popular``; for
    ``segment_popular`` the segments' shrunken estimate of it, ``segments.popularity``), never
    negative. The rows keep their order: the fill's internal score (``append_below``: 1 below
    0, 0.001 lower a place) only ordered them, in the filler's order. A row no filler proposed
    (an exploring pipeline's pick) keeps its score. The scores then follow the list's order only
    where the rules left the filler's order alone: a pin rule (or any rule that moves an item)
    moves it with its own popularity, so such a list may read ``57, 173, 151, …``; the list's
    order, not its scores, is what was served."""
    whole = tier >= TIERS.index("category")
    if not whole.any():
        return final.score
    fills = np.isin(np.asarray(final.sources, dtype=object), FILLERS)
    rows = np.flatnonzero(whole[final.query])
    own = final.source_scores[np.ix_(rows, np.flatnonzero(fills))]
    best = np.where(np.isnan(own), -np.inf, own).max(axis=1, initial=-np.inf)
    scores = final.score.copy()
    scores[rows] = np.where(np.isfinite(best), best, scores[rows])
    return scores
