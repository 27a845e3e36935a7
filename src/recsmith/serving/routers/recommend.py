"""Read routes: a user's recommendations, an item's neighbours, and the popular list.

Work per recommendation request is a share of one indexed store query (what the user has *now*,
so an event ingested a moment ago already counts; the users of requests that arrive together are
read together, ``stored_items``, or by the coalescer's flush itself when the list is computed
at once) plus a share of one coalesced pipeline call, or a response cache hit. The other
endpoints are ``def``: run in the thread pool. Every route here is a ``DirectRoute``
(``_read_route``): answered without FastAPI's per-request dependency solve, with the same
checks, errors and bytes.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from recsmith.bundle import Answer, NeedsPipeline
from recsmith.capping.policy import demote
from recsmith.capping.serving import pins_of, request_caps
from recsmith.decisions.record import UnitKind
from recsmith.decisions.requests import counting
from recsmith.decisions.served import record_served, since_arrival_ms
from recsmith.errors import StoreUnavailable, ValidationError
from recsmith.experiments.choose import choose
from recsmith.explain.build import explain_answer
from recsmith.explain.item_lists import explain_list
from recsmith.exploration.arms import ArmCounts
from recsmith.exploration.contextual import Choice, bandit_for, contextual_choice
from recsmith.exploration.explorer import EXPLORED, ExploreRequest
from recsmith.ids import MAX_ID_LENGTH, id_problems, uuid4_hex
from recsmith.lifecycle.shadow import ShadowJob
from recsmith.merchandising.live import live_view
from recsmith.merchandising.request import RecommendationBody, asked_rules, keep_rules
from recsmith.pipeline.config import MAX_LIST_LENGTH
from recsmith.pipeline.runtime import Pipeline
from recsmith.placements.choose import DEFAULT_K, list_length, placement_bundle
from recsmith.privacy.gate import ANONYMOUS, withheld_reason
from recsmith.serving.allowed_methods import AllowEveryMethod
from recsmith.serving.auth import admit, require_scope, secret_in_headers
from recsmith.serving.category_match import match_categories
from recsmith.serving.coalesce import (
    Options,
    Slot,
    StoredReadFailed,
    UserQuery,
    answer_arguments,
    in_time_order,
    weighs_history,
)
from recsmith.serving.deps import (
    BundleDep,
    Runtime,
    RuntimeDep,
    Served,
    require_bundle,
    runtime_of,
)
from recsmith.serving.direct_route import DirectRoute, solved_by
from recsmith.serving.input_errors import invalid
from recsmith.serving.path_ids import ID_SCHEMA, path_id
from recsmith.serving.reason_names import ReasonNames
from recsmith.serving.recommendation_json import recommendation_response
from recsmith.serving.response_cache import cache_key
from recsmith.serving.schemas import (
    PopularResponse,
    RecommendationResponse,
    ScoredItem,
    SimilarResponse,
    body_errors,
    error_responses,
)
from recsmith.serving.stored_items import StoredItems
from recsmith.validation_reasons import PLACEMENT_PATTERN, PRINTABLE_PATTERN

MAX_K = MAX_LIST_LENGTH
#: ``recent`` and ``exclude`` as the published schema states them: comma-separated ids, each
#: held to the id rule (``_item_ids`` checks it, with the rule's own reasons); a part that is
#: empty or only spaces names no item and is skipped
_ID_CHAR = r"[^,/\x00-\x1f\x7f-\x9f]"
ID_LIST_SCHEMA = {
    "pattern": rf"^{_ID_CHAR}{{0,{MAX_ID_LENGTH}}}(,{_ID_CHAR}{{0,{MAX_ID_LENGTH}}})*$"
}
MAX_LIST = 500

router = APIRouter(
    prefix="/v1",
    tags=["recommendations"],
    dependencies=[Depends(require_scope("read"))],
    route_class=AllowEveryMethod,  # GET and POST on a user's recommendations: a 405 names both
)

K = Annotated[int, Query(ge=1, le=MAX_K, description=f"List length, 1 to {MAX_K}")]
PlacedK = Annotated[
    int | None,
    Query(
        ge=1,
        le=MAX_K,
        description=f"List length, 1 to {MAX_K} (default: the placement's k, else {DEFAULT_K})",
    ),
]
ExplainList = Annotated[
    bool,
    Query(
        description="Add explanations, one per item: its rank and score in the list's source, "
        "the item a neighbour list is about, and 'availability' where unavailable items above "
        "it were left out (needs the admin scope)"
    ),
]


def _scored(item_ids: np.ndarray, scores: np.ndarray, source: str, reason: str) -> list[ScoredItem]:
    """An item list with the one source that made it and the same reason for every item."""
    ids: Sequence[str] = item_ids.tolist()
    values: Sequence[float] = scores.tolist()
    return [
        ScoredItem(item_id=i, score=s, sources=[source], reason=reason)
        for i, s in zip(ids, values, strict=True)
    ]


def _ids(text: str | None, name: str) -> list[str]:
    """A comma-separated id list from the query string (ids containing commas cannot be sent
    this way; use POST-based ingestion for those); a part empty or all spaces names nothing."""
    if not text:
        return []
    ids = [part for part in text.split(",") if part and not part.isspace()]
    if len(ids) > MAX_LIST:
        raise invalid(name, f"at most {MAX_LIST} ids")
    return ids


def _item_ids(text: str | None, name: str, max_length: int) -> list[str]:
    """``_ids``, each held to the id rule (``recsmith.ids``) as at every other door: an id no
    item can have (a control character, a '/', past the length limit) is the client's mistake
    to name, not an unknown item to ignore silently."""
    ids = _ids(text, name)
    if ids:
        reasons = id_problems(ids, max_length)
        bad = np.flatnonzero(reasons.astype(bool))
        if len(bad):
            raise invalid(name, f"id {bad[0] + 1} of the list {reasons[bad[0]]}")
    return ids


def _keep_seen(bundle: Served, asked: bool | None) -> bool:
    """Whether this request keeps the user's items: as asked, else as the pipeline says (a
    single model keeps none; asked to, it answers 409 like other pipeline-only options)."""
    if asked is not None:
        return asked
    return isinstance(bundle, Pipeline) and bundle.config.retrieval.include_seen


def _categories(bundle: Served, text: str | None) -> tuple[str, ...]:
    """The requested categories as the catalogue spells them (a single model answers 409 for
    any, later, so they pass unmatched)."""
    asked = _ids(text, "category")
    if not asked or not isinstance(bundle, Pipeline):
        return tuple(asked)
    return match_categories(asked, bundle.table.category_names)


_REASON_NAMES = ReasonNames()


def _named(
    bundle: Served,
    item_ids: Sequence[str | None],
    batch: Sequence[Sequence[str | None]] | None = None,
) -> list[str | None]:
    """What reasons call these items (None stays None): their catalogue titles where a
    pipeline's catalogue has them (``Pipeline.display_names``, remembered by
    ``reason_names``; ``batch``: every list's anchors of the call, named together), else their
    ids."""
    if not isinstance(bundle, Pipeline) or not any(item_ids):
        return list(item_ids)
    return _REASON_NAMES.named(bundle, item_ids, batch)


def _title(bundle: Served, item_id: str) -> str:
    """One item as a reason names it (see ``_named``)."""
    return _named(bundle, [item_id])[0] or item_id


#: Source and category combinations whose reason is remembered (``_source_reason``)
REASONS_KEPT = 4096
#: The reason a list's own source gives an item (``reason_for``), the first named in its sources
_SOURCE_REASONS = {
    "trending": "trending now",
    "new_arrivals": "new arrival",
    "popular": "popular right now",
    "segment_popular": "popular with people like you",
}


def reason_for(
    sources: Sequence[str], categories: Sequence[str] = (), anchor: str | None = None
) -> str:
    """A short explanation from the sources that proposed an item (and the categories the request
    asked for, which name the category-popularity tier). ``anchor``: the recent item an
    item-to-item source proposed it from, the most specific reason there is (but for a
    category's or the plain popularity tier's items)."""
    if anchor is not None and sources and "category_popular" not in sources:
        return f"because you viewed {anchor}"
    return _source_reason(tuple(sources), tuple(categories))


@functools.lru_cache(maxsize=REASONS_KEPT)
def _source_reason(sources: tuple[str, ...], categories: tuple[str, ...]) -> str:
    """``reason_for`` without an anchor: a function of the few source combinations a pipeline
    has (and the request's categories), remembered: worked out per item it was ~1 µs, ten a
    list."""
    if not sources:
        return "popular right now"
    if "category_popular" in sources:
        return (
            f"popular in {categories[0]}" if len(categories) == 1 else "popular in these categories"
        )
    for s in sources:
        if s in _SOURCE_REASONS:
            return _SOURCE_REASONS[s]
    if any("recent" in s or s in ("sknn", "cooccurrence") for s in sources):
        return "similar to what you viewed recently"
    return "picked for you"


class _DirectEveryMethod(AllowEveryMethod, DirectRoute):
    """A read route answered without FastAPI's per-request solve (``direct_route``): its 405
    names every method of its path, its body (the POST's rules) is decoded strictly
    (``AllowEveryMethod``'s ``StrictJSONRoute``)."""


async def _read_solved(request: Request) -> dict[str, Any]:
    """What the read routes' dependencies give their endpoints, worked out as FastAPI solved
    them and in its order: the router's key check (``require_scope("read")``: 401, 403, 429),
    ``RuntimeDep``, then ``BundleDep`` (503 while no model is loaded)."""
    runtime = runtime_of(request)
    await admit(runtime, request, "read", secret_in_headers(request))
    return {"runtime": runtime, "bundle": await require_bundle(runtime)}


def _read_route(
    path: str, method: str, **declared: Any
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a read route on ``router`` as a ``DirectRoute`` (``_read_solved``): what a
    client asks per page view should not pay FastAPI's per-request solve (BENCHMARKS §52)."""

    def register(endpoint: Callable[..., Any]) -> Callable[..., Any]:
        # ``_read_solved`` hands every read endpoint both: one without them would fail on each
        # request (a 500), so it fails here, when the app is built
        missing = {"runtime", "bundle"} - set(inspect.signature(endpoint).parameters)
        if missing:
            raise TypeError(f"read route {path}: its endpoint takes no {sorted(missing)}")
        router.add_api_route(
            path,
            solved_by(_read_solved)(endpoint),
            methods=[method],
            route_class_override=_DirectEveryMethod,
            **declared,
        )
        return endpoint

    return register


@_read_route(
    "/users/{user_id:id}/recommendations",
    "GET",
    response_model=RecommendationResponse,
    summary="Top-k items for a user",
    responses=error_responses(401, 403, 409, 422, 503),
)
async def recommend(
    request: Request,
    user_id: Annotated[str, Path(json_schema_extra=ID_SCHEMA)],
    runtime: RuntimeDep,
    bundle: BundleDep,
    k: PlacedK = None,
    recent: Annotated[
        str | None,
        Query(
            description="Comma-separated items the visitor just viewed, newest first "
            "(anonymous sessions; for a known user a pipeline's transitions source reads them "
            "ahead of the online state's latest items)",
            json_schema_extra=ID_LIST_SCHEMA,
        ),
    ] = None,
    exclude: Annotated[
        str | None,
        Query(description="Comma-separated items never to show", json_schema_extra=ID_LIST_SCHEMA),
    ] = None,
    device: Annotated[str | None, Query(max_length=32, description="Request context")] = None,
    hour: Annotated[int | None, Query(ge=0, le=23, description="Local hour of day")] = None,
    category: Annotated[
        str | None,
        Query(
            description="Comma-separated categories: only items in one of them (any case; "
            "an unknown one is a 422 listing known ones)"
        ),
    ] = None,
    diversity: Annotated[
        float | None,
        Query(
            ge=0,
            le=1,
            allow_inf_nan=False,  # NaN passes the bounds, and MMR would rank by it
            description="MMR trade-off for this request (pipeline)",
        ),
    ] = None,
    include_seen: Annotated[
        bool | None,
        Query(
            description="Keep items the user already has (repeat purchases; pipeline). Default: "
            "the pipeline's retrieval.include_seen (false unless set)"
        ),
    ] = None,
    placement: Annotated[
        str | None,
        Query(
            max_length=64,
            pattern=PLACEMENT_PATTERN,
            description="Where the list is shown (experiments split by it)",
        ),
    ] = None,
    explain: Annotated[
        bool,
        Query(
            description="Add explanations, one per item: its sources' ranks and scores, the "
            "ranker's per-feature contributions, the re-ranking steps that moved it, its anchors "
            "(needs the admin scope; computed only when asked, outside the response cache)"
        ),
    ] = False,
    page_view_id: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=128,
            pattern=PRINTABLE_PATTERN,
            description="The page view this list is part of: items an earlier list of it showed "
            "(another placement) are left out (README: Capping)",
        ),
    ] = None,
) -> Response | RecommendationResponse:
    """Items the user has not interacted with, best first, each with its sources and a reason.

    Items the user has in the store now are excluded, on top of the training data, so an event
    ingested a moment ago already counts. Concurrent requests are answered together by one
    pipeline call (``serving/coalesce.py``). The fallback chain: the user's model/pipeline
    (``tier: personalised``) → for a user unknown at training with a stored profile, a user
    tower's list from it and any recent items (``profile``, ``two_tower``) → the request's
    ``recent`` items (``session``) → popularity within the requested ``category``
    (``category``, pipelines) → popularity (``popular``); an unknown
    user is never a 404 (an empty or malformed id is a 422). While the store is unavailable the
    list is answered without its exclusions and says ``degraded: ["store"]``. With
    ``include_seen`` only ``exclude`` is left out.
    """
    path_id(user_id, "user_id")
    if explain:
        _may_explain(request, runtime)
    # erased, or no consent to personalization: the anonymous list, from nothing about them
    withheld = withheld_reason(runtime.store, user_id)
    asker = ANONYMOUS if withheld else user_id
    recommendation_id = uuid4_hex()  # before the list: it seeds exploration and allocation
    # the variant's bundle in an experiment
    counts = runtime.bandits.counts if runtime.bandits is not None else None
    chosen = choose(runtime.experiments, bundle, user_id, placement, counts, recommendation_id)
    k = list_length(k, chosen.bundle, placement)  # ``[placements.NAME] k`` (``placements``)
    lapsed: list[str] = []
    if chosen.experiment is None:  # ``[placements.NAME] release``: outside experiments
        served, lapsed = placement_bundle(runtime.placements, chosen.bundle, placement)
        if served is not chosen.bundle:  # ``replace`` costs ~5 µs a request, nearly always idle
            chosen = replace(chosen, bundle=served)
    # requests and failures per variant: the error-rate guardrail (``decisions.requests``)
    with counting(runtime.decisions, chosen.experiment, chosen.variant):
        # a pipeline's ``[placements.NAME]`` re-ranking for this placement (README: Placements)
        placed = getattr(chosen.bundle, "for_placement", None)
        bundle = placed(placement) if placed is not None else chosen.bundle
        # live rules from the store, time windows, a POST body's rules (``merchandising``)
        bundle = live_view(request, chosen.bundle, placement, bundle)
        try:
            asked = asked_rules(request, bundle)
        except ValidationError as exc:
            raise invalid(exc.field, exc.reason) from None
        except NeedsPipeline as exc:
            raise HTTPException(409, str(exc)) from None
        keep_seen = _keep_seen(bundle, include_seen)
        skip_store = keep_seen or withheld is not None
        cache = runtime.cache
        explorer = getattr(bundle, "explorer", None) is not None
        weighed = weighs_history(bundle, user_id)  # its history: the liked stored items only
        # read by the coalescer's flush with its group's (``Coalescer.answer``'s ``stored``):
        # a list computed now, on an embedded store, whose contextual arm (none here) would
        # not count the items first
        in_flush = (
            not skip_store
            and not explain
            and (cache is None or explorer or bool(asked))
            and runtime.store.local
            and bandit_for(getattr(chosen.bundle, "config", None), placement) is None
        )
        stored, history, degraded = (
            ([], [], [])
            if skip_store or in_flush
            else await _stored_items(runtime, user_id, in_time_order(bundle), weighed)
        )
        profile, unread = (None, []) if withheld else await _profile(runtime, bundle, user_id)
        degraded += [d for d in unread if d not in degraded]
        longest = runtime.settings.events.max_id_length
        seen = [*stored, *_item_ids(exclude, "exclude", longest)]
        # frequency capping and the page view's earlier lists (``recsmith.capping``)
        caps, lapses = await request_caps(
            runtime, bundle, None if withheld else user_id, page_view_id
        )
        seen += caps.withheld
        latest = _item_ids(recent, "recent", longest)
        if withheld is None:
            # items rated 0 or below since training: left out even while the store is down
            anchors, unliked = runtime.state.recent_and_seen(
                user_id, runtime.settings.serving.recent_items
            )
            latest += anchors
            seen += unliked
        else:
            latest = []
        context = {k_: v for k_, v in {"device": device, "hour": hour}.items() if v is not None}
        categories = _categories(bundle, category)
        query = UserQuery(asker, seen, latest, context, recommendation_id, profile, history)
        # ``[contextual]``: which list (arm) this request gets, from its context
        known = not recent and withheld is None  # a visitor asks with ``recent``
        arm = contextual_choice(
            runtime.contextual,
            chosen.bundle,
            len(stored),
            known,
            hour,
            placement,
            recommendation_id,
            user_id=None if recent or withheld else user_id,  # ``ranker_features``: its events
            device=device,
        )
        options = Options(k, categories, diversity, keep_seen, asked, arm.arm if arm else None)
        # a draw per request: exploration, a contextual arm
        explores = explorer or arm is not None
        if explain:  # the single-request path, traced (``recsmith.explain``)
            listed = _explained(runtime, bundle, query, options)
        elif cache is None or explores or asked:
            reader = runtime.stored_items if in_flush else None
            listed, slot = await _computed(runtime, bundle, query, options, reader, weighed)
            stored = slot.stored or stored  # what the flush read, if it read
            history = slot.history or history
            if slot.store_down and "store" not in degraded:
                degraded.insert(0, "store")
        else:
            # catalogue changes applied since the release (``catalog_sync``) change what rules
            # let by
            release = f"{bundle.version}@{bundle.catalog_stamp}{getattr(bundle, 'live_rules', '')}"
            if bundle is not chosen.bundle:  # a placement's own re-ranking: its own lists
                release += f"#{placement}"
            key = cache_key(
                release,
                asker,
                k,
                history,  # the stored items it scores from (a weighing release: the liked)
                seen,
                latest,
                context,
                categories,
                diversity,
                keep_seen,
                profile,
            )
            hit = cache.get(key)
            runtime.metrics.response_cache.labels(result="miss" if hit is None else "hit").inc()
            if hit is None:
                listed = (await _computed(runtime, bundle, query, options))[0]
                cache.put(key, json.dumps(listed).encode())
            else:
                listed = json.loads(hit)
        metrics = runtime.metrics
        metrics.child(metrics.recommendations, listed["fallback"] or "none").inc()
        propensities = listed.pop("propensities", None)
        demoted = 0
        if caps.demoted:  # frequency capping's ``demote`` action: the capped items sink
            listed["items"], demoted = demote(listed["items"], caps.demoted, pins_of(bundle))
        if chosen.arm is not None and runtime.bandits is not None:  # adaptive allocation's trials
            shown = len(listed["items"])
            runtime.bandits.shown([chosen.arm] * shown, [True] * shown)
        # the model's fields in its order (``recommendation_json.FIELDS``), its items as
        # ``_listing`` built them (the cache's copy and ``demote`` keep them so): written as they
        # are, without building the model (``recommendation_json``); explanations are models of
        # their own: a list explained goes through the model
        fields = {
            "recommendation_id": recommendation_id,
            "model_version": bundle.version,
            "items": listed["items"],
            "experiment": chosen.experiment,
            "variant": chosen.variant,
            "user_id": user_id,
            "tier": listed["tier"],
            "fallback": listed["fallback"],
            "degraded": [*degraded, *lapses, *lapsed, *listed.get("shortfalls", [])],
            "not_personalised": withheld,
            "capped": caps.capped + demoted,
            "page_view_excluded": caps.repeated,
        }
        items: Sequence[Mapping[str, Any]] = listed["items"]
        response: Response | RecommendationResponse = (
            RecommendationResponse(**fields, explanations=listed["explanations"])
            if "explanations" in listed
            else recommendation_response(fields)
        )
    # a visitor asks with its session id and the items it just viewed (``recent``)
    kind: UnitKind = "session" if recent else "user"
    latency = since_arrival_ms(request.scope)
    unit, kind = (None, "none") if withheld else (user_id, kind)  # nothing kept about them
    shadow = request.app.state.shadow
    if shadow.wants(recommendation_id):  # a candidate release's turn, off this path
        served = [i["item_id"] for i in items]
        if in_flush:  # the query as answered: the stored items the flush read ahead of its own
            query = replace(query, seen=[*stored, *query.seen], history=[*history, *query.history])
        # the candidate serves its own whole list (a contextual arm is this release's choice)
        whole = options if options.source is None else replace(options, source=None)
        # how the stored items were read: a shadow reading their order reads them again if not
        by_time = in_time_order(bundle) or weighed  # a weighed read is oldest first
        shadow.offer(ShadowJob(query, whole, served, latency, by_time, weighed))
    logged = (
        Listed(recommendation_id, bundle.version, items, chosen.experiment, chosen.variant),
        "recommendations",
        unit,
        kind,
        placement,
        latency,
        propensities,
    )
    if page_view_id is None:
        _record(runtime, *logged, chosen.propensity, None, arm)
    else:  # stored before the response leaves: the page view's next list may go to any worker
        await run_in_threadpool(_record, runtime, *logged, chosen.propensity, page_view_id, arm)
    return response


@dataclass(slots=True)
class Listed:
    """What the decision log keeps of a list answered (``_record``): a response model's fields,
    or the recommendation route's own, which writes its JSON without a model.

    Not frozen (never changed once built): one is built per request on the event loop, where
    a frozen class's ``__init__`` sets each field by ``object.__setattr__`` (BENCHMARKS §141)."""

    recommendation_id: str
    model_version: str
    items: Sequence[Mapping[str, Any]]
    experiment: str | None = None
    variant: str | None = None

    @classmethod
    def of(cls, response: SimilarResponse | PopularResponse) -> Listed:
        """A list route's response model, as the log reads it."""
        return cls(
            response.recommendation_id,
            response.model_version,
            [
                {"item_id": i.item_id, "score": i.score, "sources": i.sources}
                for i in response.items
            ],
            response.experiment,
            response.variant,
        )


def _record(
    runtime: Runtime,
    response: Listed,
    route: str,
    unit: str | None = None,
    unit_kind: UnitKind = "none",
    placement: str | None = None,
    latency_ms: float | None = None,
    propensities: list[float] | None = None,
    assignment_propensity: float | None = None,
    page_view: str | None = None,
    arm: Choice | None = None,
) -> None:
    """The decision log's record of a list answered (``decisions.served``), with the experiment
    and variant the response carries (None outside experiments), the request's placement,
    where the route timed it, its latency (``Decision.latency_ms``), an exploring pipeline's
    propensities (None: a deterministic list), the variant's assignment probability and the
    contextual arm chosen (``exploration.contextual``), whose board counts the round shown."""
    if arm is not None and response.items:
        arm.board.shown(arm.arm, arm.context)
    items = response.items
    record_served(
        runtime.decisions,
        runtime.metrics,
        response.recommendation_id,
        route=route,
        release=response.model_version,
        item_ids=[i["item_id"] for i in items],
        scores=[i["score"] for i in items],
        sources=[i["sources"] for i in items],
        unit=unit,
        unit_kind=unit_kind,
        placement=placement,
        experiment=response.experiment,
        variant=response.variant,
        latency_ms=latency_ms,
        propensities=propensities,
        assignment_propensity=assignment_propensity,
        page_view=page_view,
        arm=arm,
    )


async def _stored_items(
    runtime: Runtime, user_id: str, by_time: bool, weighed: bool
) -> tuple[list[str], list[str], list[str]]:
    """The items the user has in the store now (``by_time``: oldest first, for a release that
    reads their order: ``coalesce.in_time_order``), those of them that are their history (all,
    or with ``weighed`` the liked ones, oldest first: ``StoredItems.weighed``), and the parts
    the answer goes without: while the store is unavailable the list comes from what is in
    memory (model, online state, catalogue) without the store's latest exclusions, marked
    ``degraded: ["store"]``, rather than no list at all."""
    try:
        if weighed:
            return (*await runtime.stored_items.weighed(user_id), [])
        # read with the other requests' users that arrived together (``stored_items``)
        items = await runtime.stored_items.of(user_id, by_time)
        return items, items, []
    except StoreUnavailable:
        return [], [], ["store"]


async def _profile(
    runtime: Runtime, bundle: Served, user_id: str
) -> tuple[dict[str, Any] | None, list[str]]:
    """The stored profile of a user whose list it can change (``Pipeline.needs_profile``: a
    release with segments that knows neither their events nor their profile;
    ``ModelBundle.needs_profile``: a user tower that does not know them), else None with
    no read at all; while the store is unavailable, None and ``degraded: ["store"]``."""
    needs = getattr(bundle, "needs_profile", None)
    if needs is None or not needs(user_id):
        return None, []
    try:
        if runtime.store.local:
            user = runtime.store.get_user(user_id)
        else:
            user = await run_in_threadpool(runtime.store.get_user, user_id)
    except StoreUnavailable:
        return None, ["store"]
    return (dict(user.properties) if user is not None else None), []


async def _computed(
    runtime: Runtime,
    bundle: Served,
    query: UserQuery,
    options: Options,
    stored: StoredItems | None = None,
    weighed: bool = False,
) -> tuple[dict[str, Any], Slot]:
    """The list as the response carries it (less its ids): tier, fallback and scored items with
    their sources and reasons — what the response cache stores; and the query's ``Slot``.
    ``stored``: the coalescer's flush reads the user's stored items (``Coalescer.answer``;
    ``weighed``: with the liked ones, its history)."""
    try:
        slot = await runtime.coalescer.answer(bundle, query, options, stored, weighed)
    except NeedsPipeline as exc:  # a valid request this deployment cannot answer
        raise HTTPException(409, str(exc)) from None
    except StoredReadFailed as exc:  # the read's own failure, as when the route read alone
        raise exc.__cause__ from None  # type: ignore[misc]
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    answer, row = slot.answer, slot.index
    if slot.first:  # one pipeline call, observed once
        runtime.metrics.observe_answer(answer.timings, answer.candidates, slot.batch_size)
    return _listing(runtime, bundle, answer, row, options), slot


def _listing(
    runtime: Runtime, bundle: Served, answer: Answer, row: int, options: Options
) -> dict[str, Any]:
    """Row ``row`` of a pipeline call's answer as the response carries it (``_computed``)."""
    tier = answer.tiers[row]
    ids: Sequence[str] = answer.lists.item_ids[row].tolist()
    scores: Sequence[float] = answer.lists.scores[row].tolist()
    anchors = (
        _named(bundle, answer.anchors[row], answer.anchors) if answer.anchors else [None] * len(ids)
    )
    explored: dict[str, list[float]] = {}
    if answer.propensities:  # an exploring pipeline: the bandit counts what it showed
        explored["propensities"] = answer.propensities[row]
        if runtime.bandits is not None:
            runtime.bandits.shown(ids, [EXPLORED in s for s in answer.sources[row]])
    return {
        **explored,
        "tier": tier,
        "fallback": None if tier == "personalised" else tier,
        "shortfalls": answer.notes[row] if answer.notes else [],
        "items": [
            {
                "item_id": i,
                "score": s,
                "sources": src,
                "reason": reason_for(src, options.categories, anchor),
            }
            for i, s, src, anchor in zip(ids, scores, answer.sources[row], anchors, strict=True)
        ],
    }


def _may_explain(request: Request, runtime: Runtime) -> None:
    """``?explain=true`` shows the ranker's features and the re-ranking rules: the admin
    scope's (a 403 naming it for a read key; the router's check has already run)."""
    key = getattr(request.state, "api_key", None)
    if runtime.settings.serving.require_keys and (key is None or not key.allows("admin")):
        raise HTTPException(
            403,
            "explain=true needs a key with the 'admin' scope (it shows how lists are made: "
            "sources, the ranker's features, the business rules)",
        )


def _explained(
    runtime: Runtime, bundle: Served, query: UserQuery, options: Options
) -> dict[str, Any]:
    """``_computed``'s list, from one traced call of its own (``explain.build``), with an
    explanation per item; an exploring pipeline draws as the coalesced call would."""
    explore: dict[str, Any] = {}
    if getattr(bundle, "explorer", None) is not None:
        arms = runtime.bandits.counts if runtime.bandits is not None else ArmCounts()
        explore["explore"] = ExploreRequest([query.request_id], arms)
    try:
        answer, explained = explain_answer(
            bundle, query.user_id, options.k, **answer_arguments([query], options), **explore
        )
    except NeedsPipeline as exc:
        raise HTTPException(409, str(exc)) from None
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    return {**_listing(runtime, bundle, answer, 0, options), "explanations": explained}


@_read_route(
    "/items/{item_id:id}/together",
    "GET",
    response_model=SimilarResponse,
    summary="Frequently bought or viewed together",
    responses=error_responses(401, 403, 404, 409, 422, 503),
)
def together(
    request: Request,
    item_id: str,
    runtime: RuntimeDep,
    bundle: BundleDep,
    k: K = 10,
    explain: ExplainList = False,
) -> SimilarResponse:
    """Items that share baskets/sessions with the item; 409 saying how to enable it when the
    deployment has no co-occurrence model or source."""
    if explain:
        _may_explain(request, runtime)
    response = _neighbours(
        bundle, item_id, k, bundle.together, "cooccurrence", "often together with", explain
    )
    _record(runtime, Listed.of(response), "together")
    return response


@_read_route(
    "/trending",
    "GET",
    response_model=PopularResponse,
    summary="What is picking up now",
    responses=error_responses(401, 403, 422, 503),
)
def trending(
    request: Request,
    runtime: RuntimeDep,
    bundle: BundleDep,
    k: K = 10,
    explain: ExplainList = False,
) -> PopularResponse:
    """The trending source of the deployed pipeline (popularity for a single model)."""
    source = "trending" if isinstance(bundle, Pipeline) and bundle.has_trending else "popular"
    response = _top_list(request, runtime, bundle, bundle.trending_items, k, source, explain)
    _record(runtime, Listed.of(response), "trending")
    return response


def _top_list(
    request: Request,
    runtime: Runtime,
    bundle: Served,
    fetch: Callable[[int], tuple[np.ndarray, np.ndarray]],
    k: int,
    source: str,
    explain: bool,
) -> PopularResponse:
    """A list of ``source``'s top items (popular, trending), explained when asked."""
    if explain:
        _may_explain(request, runtime)
    ids, scores = fetch(k)
    return PopularResponse(
        recommendation_id=uuid4_hex(),
        model_version=bundle.version,
        items=_scored(ids, scores, source, reason_for([source])),
        explanations=explain_list(fetch, ids, source) if explain else None,
    )


@_read_route(
    "/items/{item_id:id}/similar",
    "GET",
    response_model=SimilarResponse,
    summary="Items similar to an item",
    responses=error_responses(401, 403, 404, 409, 422, 503),
)
def similar(
    request: Request,
    item_id: str,
    runtime: RuntimeDep,
    bundle: BundleDep,
    k: K = 10,
    explain: ExplainList = False,
) -> SimilarResponse:
    """The model's nearest items; 404 for an item the deployment does not know; 409 saying why
    when it has nothing to go on (an item without interactions or added after training, and no
    content source to find neighbours by)."""
    if explain:
        _may_explain(request, runtime)
    response = _neighbours(
        bundle, item_id, k, bundle.similar_items, "similar", "similar to", explain
    )
    _record(runtime, Listed.of(response), "similar")
    return response


def _neighbours(
    bundle: Served,
    item_id: str,
    k: int,
    fetch: Callable[[str, int], tuple[np.ndarray, np.ndarray]],
    source: str,
    reason: str,
    explain: bool = False,
) -> SimilarResponse:
    """An item-to-item list, each item's reason ``reason`` and the item's title; 404 for an
    unknown item, 409 when the deployment cannot answer. ``explain``: with an explanation per
    item, the asked item its anchor (``explain.item_lists``)."""
    path_id(item_id, "item_id")
    try:
        ids, scores = fetch(item_id, k)
    except KeyError:
        raise HTTPException(
            404,
            f"item {item_id!r} is unknown to model {bundle.version}: not in its catalogue (a "
            "pipeline knows an item once PUT /v1/items creates it; a single model after the "
            "next training that sees events for it)",
        ) from None
    except LookupError as exc:  # the deployment has no such list: how to get one, not a 404
        raise HTTPException(409, str(exc)) from None
    return SimilarResponse(
        recommendation_id=uuid4_hex(),
        item_id=item_id,
        model_version=bundle.version,
        items=_scored(ids, scores, source, f"{reason} {_title(bundle, item_id)}"),
        explanations=explain_list(lambda n: fetch(item_id, n), ids, source, item_id)
        if explain
        else None,
    )


@_read_route(
    "/popular",
    "GET",
    response_model=PopularResponse,
    summary="The most popular items",
    responses=error_responses(401, 403, 422, 503),
)
def popular(
    request: Request,
    runtime: RuntimeDep,
    bundle: BundleDep,
    k: K = 10,
    explain: ExplainList = False,
) -> PopularResponse:
    """The fallback list, as of the model's training data."""
    response = _top_list(request, runtime, bundle, bundle.popular_items, k, "popular", explain)
    _record(runtime, Listed.of(response), "popular")
    return response


async def recommend_with_rules(
    request: Request, body: RecommendationBody, **options: Any
) -> Response | RecommendationResponse:
    """The GET route's list with business rules for this request only (``{"rules": [...]}``,
    the language of a pipeline file's ``[[rerank.rules]]``), applied on top of the live rules;
    a malformed rule, or one the catalogue refuses, is a 422 naming ``rules[i].<field>``. The
    query string takes every option of the GET route. Lists with request rules are never
    served from, nor put into, the response cache."""
    keep_rules(request, body.rules)
    return await recommend(request, **options)


# the GET route's parameters, whatever they become, plus the body: one handler, two methods
_GET = inspect.signature(recommend, eval_str=True)
_BODY = inspect.Parameter(
    "body", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=RecommendationBody
)
_params = list(_GET.parameters.values())
recommend_with_rules.__signature__ = _GET.replace(  # type: ignore[attr-defined]
    parameters=[_params[0], _BODY, *_params[1:]]
)
_read_route(
    "/users/{user_id:id}/recommendations",
    "POST",
    response_model=RecommendationResponse,
    summary="Top-k items for a user, with request-time rules",
    responses=error_responses(401, 403, 409, 422, 503),
    openapi_extra=body_errors(),
)(recommend_with_rules)
