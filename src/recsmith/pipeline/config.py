"""Pipeline configuration: ``pipeline.toml`` parsed into typed, validated settings.

```toml
[[retrieval.sources]]
name = "ials"          # a label (feature names, explanations)
model = "ials"         # any registered model, or kind = "new_arrivals"
quota = 200            # candidates this source contributes per request
params = { factors = 64 }
use = "auto"           # "recent": score the session's items (item-to-item sources)

[ranking]
enabled = true         # LightGBM LambdaMART over candidate features
label_share = 0.1      # latest share of training events that label the ranker's examples
label_protocol = "time"  # or "latest": each user's latest item labels; "both": the two together

[rerank]
diversity = 0.2        # MMR: 0 = relevance only, 1 = diversity only
max_per_category = 3
# fairness (recsmith.fairness): calibration = 0.5, popularity_penalty = 0.3,
# [[rerank.exposure]] floors/ceilings, [rerank.amortised]
```
"""

from __future__ import annotations

import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, model_validator

from recsmith.errors import UnknownModelError, ValidationError
from recsmith.exploration.config import ExploreConfig
from recsmith.exploration.contextual import WHOLE, ContextualConfig
from recsmith.fairness.amortised import AmortisedConfig
from recsmith.fairness.exposure import ExposureRule
from recsmith.models.base import Recommender
from recsmith.models.registry import model_class
from recsmith.ranking.ltr import RankerConfig
from recsmith.rerank.rules import RULE_TYPES, CapPerCategoryRule, FilterRule, Rule
from recsmith.validation_reasons import (
    PATTERN_MEANINGS,
    PLACEMENT_PATTERN,
    reworded,
    unknown_key,
)


class _Strict(BaseModel):
    # strict: TOML has types, so "50" or "no" where a number or a boolean belongs is a mistake
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


#: Names the pipeline gives its own lists (the popularity fallbacks under every list).
RESERVED_SOURCES = ("popular", "category_popular", "segment_popular")
#: Names calibration gives its own candidates in the manifest (the fused order, the ranker, the
#: order built forward, the decayed EASE copy; ``fused+…`` for an order with one more source): a
#: source so named would be read as that candidate (its summary line looked up a report that
#: was not there and training failed, review rv28c), so a file may not use them.
CALIBRATION_NAMES = ("fused", "ranker", "forward", "ease_decayed")


class SourceConfig(_Strict):
    name: str = Field(min_length=1)
    kind: Literal["model", "new_arrivals"] = "model"
    model: str | None = None
    quota: int = Field(100, ge=1, le=5000)
    params: dict[str, Any] = Field(default_factory=dict)
    use: Literal["auto", "recent"] = "auto"
    weight: float = Field(
        1.0,
        ge=0,
        description="the source's say in the fused (RRF) order that serves when no ranker is "
        "deployed; lower for sources that are the same for everyone",
    )

    tune: dict[str, list[Any]] = Field(
        default_factory=dict,
        description="values to try per parameter; training keeps the combination under which "
        "this source alone best ranks each user's held-out latest item (source_tuning.py)",
    )

    @model_validator(mode="after")
    def _model_named(self) -> SourceConfig:
        if self.name in RESERVED_SOURCES:
            raise ValueError(f"source name {self.name!r} is the pipeline's own fallback's")
        if self.name in CALIBRATION_NAMES or self.name.startswith("fused+"):
            raise ValueError(f"source name {self.name!r} is one calibration gives its candidates")
        if self.kind == "new_arrivals":
            given = [k for k in ("model", "params", "tune") if getattr(self, k)]
            if given or self.use != "auto":
                what = ", ".join(given + (["use"] if self.use != "auto" else []))
                raise ValueError(f"source {self.name!r}: new_arrivals takes no {what}")
            return self
        if not self.model:
            raise ValueError(f"source {self.name!r}: name a model (or kind = 'new_arrivals')")
        empty = [name for name, values in self.tune.items() if not values]
        if empty:
            raise ValueError(f"source {self.name!r}: tune.{empty[0]} lists no values")
        _check_model(self)
        return self


def _check_model(source: SourceConfig) -> None:
    """The model exists, takes ``params`` and every ``tune`` value, and can do what ``use``
    asks: checked when the file is read, not after the sources before it have trained."""
    try:
        cls = model_class(source.model or "")
    except UnknownModelError as exc:  # a KeyError: pydantic reports only ValueErrors
        raise ValueError(f"source {source.name!r}: {exc}") from None
    tried = {**source.params}
    for key, values in source.tune.items():
        for value in values:
            _config(cls, source, {**tried, key: value}, f"tune.{key}")
    _config(cls, source, tried, "params")
    if source.use == "recent" and cls._score_history is Recommender._score_history:
        raise ValueError(
            f"source {source.name!r}: use = 'recent' needs a model that scores a list of items "
            f"(item-kNN, co-occurrence, EASE, session-kNN, content, SASRec), not {source.model}"
        )


def _config(cls: type[Recommender], source: SourceConfig, params: dict[str, Any], key: str) -> None:
    try:
        cls.Config.model_validate(params)
    except pydantic.ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        reason = err["msg"]
        if err["type"] == "extra_forbidden":  # a typo: say the parameter meant
            reason = unknown_key(cls.Config, err["loc"], top="parameter")
        raise ValueError(f"source {source.name!r}: {key} {field}: {reason}") from None


class RetrievalConfig(_Strict):
    sources: list[SourceConfig] = Field(min_length=1)
    recent_items: int = Field(5, ge=0, le=100, description="latest items per user as 'recent'")
    include_seen: bool = Field(
        False,
        description="keep items a user already has in their lists (repeat purchases, "
        "retargeting); a request's include_seen overrides it",
    )
    ann_min_items: int = Field(
        50_000, ge=1, description="factor-model sources use a faiss index from this many items"
    )

    @model_validator(mode="after")
    def _unique(self) -> RetrievalConfig:
        names = [s.name for s in self.sources]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"retrieval.sources: names must be unique ({', '.join(twice)} twice)")
        return self


class RankingConfig(_Strict):
    enabled: bool = True
    label_share: float = Field(0.1, gt=0, lt=0.5)
    label_protocol: Literal["time", "latest", "both"] = Field(
        "time",
        description="what labels the ranker's examples: global time cuts (the latest label_share "
        "of events, then earlier ones), each user's latest item against the rest of the events "
        "(the leave-last-out task), or both together",
    )
    max_queries: int = Field(5000, ge=10)
    min_queries: int = Field(
        200,
        ge=10,
        description="labelled queries needed to train a ranker; earlier label windows (up to "
        "four) are added to reach them, else the fused retrieval order serves",
    )
    max_candidates: int = Field(
        100, ge=10, description="best retrieved candidates per query the ranker learns from"
    )
    params: RankerConfig = Field(default_factory=RankerConfig)
    keep: Literal["better", "beyond_noise"] = Field(
        "better",
        description="when the held-out check keeps the ranker: any gain over the fused order on "
        "the held-out users, or a gain whose 95 % paired bootstrap interval lies above zero",
    )
    random_state: int = 0
    max_property_features: int = Field(
        8,
        ge=0,
        le=64,
        description="declared item properties, and as many user profile properties, that become "
        "ranker features: the most frequently declared ones (0: none)",
    )
    context_features: bool = Field(
        True,
        description="hour, day of week, device and context_keys of each query as features "
        "(false: the ranker learns from histories only)",
    )
    context_keys: list[str] = Field(
        default_factory=list,
        max_length=16,
        description="event context keys (besides hour and device) that become ranker features",
    )


class RerankConfig(_Strict):
    """Business rules (see ``recsmith.rerank.rules``) and diversity, applied to every request."""

    diversity: float = Field(0.0, ge=0, le=1, description="MMR: 0 = relevance, 1 = diversity")
    similarity: Literal["category", "content"] = Field(
        "category", description="what diversity compares: primary category or TF-IDF vectors"
    )
    max_per_category: int = Field(0, ge=0, description="0 = no cap")
    only_available: bool = Field(
        True, description="kept for older files: unavailable items are never shown, so only true"
    )
    rules: list[Rule] = Field(default_factory=list)
    calibration: float = Field(
        0.0, ge=0, le=1, description="Steck calibrated re-ranking: 0 = off, 1 = match the mix only"
    )
    calibration_property: str = Field(
        "category", min_length=1, description="what calibration matches: categories or a property"
    )
    exposure: list[ExposureRule] = Field(
        default_factory=list, description="floors / ceilings on an item group's share of a list"
    )
    popularity_penalty: float = Field(
        0.0, ge=0, le=4, description="an item with n interactions competes as if buried (1+n)^-β"
    )
    amortised: AmortisedConfig | None = Field(
        None, description="boost item groups the decision log shows under-exposed so far"
    )

    @model_validator(mode="after")
    def _always_available(self) -> RerankConfig:
        if self.calibration and self.diversity:
            raise ValueError(
                "calibration and diversity are both set: calibration picks the list itself, so "
                "choose one (a request's diversity still overrides calibration for that request)"
            )
        if not self.only_available:
            raise ValueError(
                "only_available = false is not supported: unavailable items are never shown "
                "(remove the key)"
            )
        return self

    def fairness_keys(self) -> dict[str, Any]:
        """The fairness controls' settings, as ``recsmith.fairness.build_fairness`` takes them."""
        return {
            "calibration": self.calibration,
            "calibration_property": self.calibration_property,
            "exposure": tuple(self.exposure),
            "popularity_penalty": self.popularity_penalty,
            "amortised": self.amortised,
        }

    def all_rules(self) -> list[Rule]:
        """The configured rules plus those the shorthand keys stand for."""
        extra: list[Rule] = []
        if self.only_available:
            extra.append(FilterRule(property="available", equals=True))
        if self.max_per_category:
            extra.append(CapPerCategoryRule(max=self.max_per_category))
        return [*self.rules, *extra]


#: The longest list a request may ask for (the recommendation routes' ``k``).
MAX_LIST_LENGTH = 1000


class PlacementConfig(_Strict):
    """``[placements.NAME]``: what differs where the list is shown (``?placement=NAME``).

    ``rerank``: the ``[rerank]`` keys that differ (its rules, diversity, caps and fairness
    controls); a key given here replaces the pipeline's value whole (a list of rules replaces
    the list). ``k``: the list length when a request gives none (else 10). ``release``: a
    release of the server's model registry that serves this placement instead of the deployed
    one (``recsmith.placements``), with that release's own re-ranking for the placement.

    ``contextual``: the placement's own contextual bandit (its own arms and learned state,
    ``exploration.contextual.bandit_for``) instead of the pipeline's ``[contextual]``, whose
    bandit only sees the placement as a feature. ``explore``: the placement's own exploration
    policy, replacing the pipeline's ``[explore]`` (if any) whole where the list is shown
    (``epsilon = 0``: none)."""

    rerank: dict[str, Any] = Field(default_factory=dict)
    k: int | None = Field(None, ge=1, le=MAX_LIST_LENGTH)
    release: str | None = Field(None, min_length=1, max_length=128)
    contextual: ContextualConfig | None = Field(None, exclude_if=lambda value: value is None)
    explore: ExploreConfig | None = Field(None, exclude_if=lambda value: value is None)

    def resolved(self, base: RerankConfig) -> RerankConfig:
        """``base`` with this placement's keys applied (validated as a ``[rerank]`` table)."""
        return RerankConfig.model_validate({**base.model_dump(), **self.rerank})


#: A weight tried beside EASE's scores (its ``lowpass`` / ``autoencoder``), capped as EASE caps
#: it, so a value EASE would refuse is named when the file is read, not mid-calibration.
EaseWeight = Annotated[float, Field(gt=0, le=10)]
#: A half-life tried for EASE's ``decay`` (a share of the data's span), capped as EASE caps it.
EaseDecay = Annotated[float, Field(gt=0, le=100)]
#: β of EASE's ``recency`` (``ease.py``): as wide as EASE accepts
EaseRecency = Annotated[float, Field(gt=0, le=100)]


class CalibrationConfig(_Strict):
    """Choosing what serves on a validation split of the user's own events (``calibration.py``).

    Off unless a file turns it on: a file written before it existed pinned its choices, and
    ``default.toml`` / ``examples/pipeline.toml`` turn it on."""

    enabled: bool = False
    budget_seconds: float = Field(
        600.0,
        gt=0,
        description="CPU seconds of the training process for calibration (so the machine's "
        "load does not change the choice); the grid stops at half, the ranker is tried only if "
        "it fits",
    )
    min_users: int = Field(
        100,
        ge=20,
        description="held-out rows after a temporal cut needed to validate on it (a user once "
        "per pooled cut, so more than the protocol's distinct users); else each user's latest "
        "item is held out",
    )
    share: float = Field(
        0.1, gt=0, lt=0.5, description="latest share of events the cut holds (then 2x, 3x)"
    )
    max_users: int = Field(5000, ge=20, description="validation users scored (a sample beyond)")
    latest_folds: int = Field(
        3,
        ge=1,
        le=10,
        description="where no protocol tells the sources apart with each user's latest item "
        "(or no protocol holds 20 users), the items before it are held out one at a time too and "
        "pooled into that protocol while its distinct users are fewer than 1,000, each user "
        "scored once as their mean over the folds (1: the latest item only); each fold fits "
        "every source once more",
    )
    ials_factors: list[PositiveInt] = Field(
        default_factory=list,
        description="iALS ranks tried beside the file's, before its alpha, kept only beyond "
        "noise ([] tries none: [8, 16] gained nothing on test on the marketplace shape, "
        "BENCHMARKS §84); each value fits iALS once more per validation split",
    )
    ease_lowpass: list[EaseWeight] = Field(
        default_factory=lambda: [0.3, 1.0],
        description="weights of GF-CF's low-pass filter tried beside an EASE source's scores"
        " (after its λ and rising factor): each must beat the filter off beyond noise by itself,"
        " and of those the best worst share is kept ([] tries none); each value fits EASE once"
        " more per validation split (BENCHMARKS §92, §112)",
    )
    ease_autoencoder: list[EaseWeight] = Field(
        default_factory=lambda: [1.0],
        description="weights of a Mult-DAE's logits tried beside an EASE source's scores (after"
        " its low-pass weight): each must beat the autoencoder off beyond noise by itself, and of"
        " those the best worst share is kept ([] tries none); each value fits EASE and the"
        " network once more per validation split (BENCHMARKS §139)",
    )
    ease_past_top: bool = Field(
        False,
        description="true: where the grid keeps the top of ease_lowpass or ease_autoencoder, it"
        " also tries the next half-decade weight above (1 → 3 → 10, up to EASE's 10) while each"
        " step is kept (beats off beyond noise, the best worst share); each step reuses the λ's"
        " solve; off by default: not confirmed on unread samples (BENCHMARKS §173)",
    )
    ease_decay: list[EaseDecay] = Field(
        default_factory=list,
        description="half-lives tried for an EASE source's time decay (after its autoencoder"
        " weight), each a share of the validation past's own time span (its first event to its"
        ' newest, its "now"): each must beat no decay beyond noise by itself, and of those the'
        " best worst share is kept ([] tries none: never kept on 18 samples, not confirmed,"
        " BENCHMARKS §164); each value fits EASE once more per validation split",
    )
    ease_recency: list[EaseRecency] = Field(
        default_factory=lambda: [1.0, 3.0],
        description="β tried for an EASE source's recency weights (right after its λ): a"
        " user's own items weighed at scoring time by their place from the newest, 1 + β ·"
        " 0.5 ** ((place − 1) / recency_half_places); each must beat β 0 beyond noise on one"
        " protocol and lose beyond noise on none (not the worst share: recency trades a time"
        " cut for each user's next item, §185), or lose at most 1.5 % where it gains twice"
        " that beyond noise (a bounded trade, §188), and of those the best worst share is kept ([]"
        " tries none); each value reuses the λ's solve; on unread samples +5–6 % beyond noise"
        " where each user's next item is the test at 6k–22k users, within noise pooled over 55"
        " small samples of every shape (BENCHMARKS §182, §185, §187)",
    )
    decayed_source: float = Field(
        0.0,
        ge=0,
        le=100,
        description="half-life (a share of the data's span) of a time-decayed copy of the "
        "fused order's EASE source tried beside it (weight 1, plain EASE at its λ); that order "
        "ships only where it beats the choice so far beyond noise (0: not tried; one EASE solve "
        "more per validation past, and one more item x item matrix where it ships; "
        "decayed_source.py, BENCHMARKS §171)",
    )
    fused_weights: bool = Field(
        False,
        description="also try each personal source's weight in the fused order at half and at "
        "twice the file's (one pass, fewest proposals first), each kept only where it wins "
        "beyond noise (a merge each, no fit; off: not confirmed on unread samples, BENCHMARKS "
        "§163)",
    )
    fused_forward: bool = Field(
        False,
        description="also build a fused order forward from the base single source: add the "
        "personal source whose addition lifts the worst share most while it wins beyond noise, "
        "up to 3 serving; the full fused order must then beat it beyond noise (a merge per try, "
        'no fit; manifest "fused_forward"; BENCHMARKS §169)',
    )
    fused_drop: bool = Field(
        False,
        description="also try the fused order without the one source whose absence lifts its "
        "worst share most; it replaces the fused order only if it wins beyond noise (a merge "
        "each, no fit; off: no gain on test where measured, BENCHMARKS §84)",
    )
    sitting_bar: bool = Field(
        False,
        description="true: where each user's latest item continues a sitting (>= 70 % within 30 "
        "min of the previous event: MovieLens), a time cut that does not decide bars what falls "
        "below popularity there (the latest item then measures the order inside a sitting, not a "
        "later visit; BENCHMARKS §150); off by default: on unread samples its time-split gain "
        "was not confirmed while its leave-last-out loss was (BENCHMARKS §155)",
    )
    pooled_prefer: bool = Field(
        False,
        description="true: the fused order also replaces the base single source where its lead "
        "on the validation users of the deciding protocols pooled (a user on several one unit) "
        "is beyond noise and it is worse beyond noise on no protocol, though no protocol alone "
        "shows the lead (BENCHMARKS §160)",
    )
    ranker_latest: bool = Field(
        False,
        description="true: where each user's latest item decides, the ranker calibration tries "
        "learns from each validation past's latest items (ranking.label_protocol latest, "
        "shipped with it if it wins) instead of time cuts (BENCHMARKS §181; not confirmed)",
    )
    sequential: bool = Field(
        False,
        description="try SASRec (the torch extra) as a source where users' sequences are long "
        "and its fits fit the budget; it ships only if it wins on validation (sequential.py)",
    )


class SegmentsConfig(_Strict):
    """Popularity within a user's profile segments for users with a profile and no events
    (``segments.popularity``); without profiles it changes nothing. On by default: on ml-100k's
    validation split it beat global popularity for new users, and the gain held on its test split
    and on cold-start user splits it was not chosen on (BENCHMARKS, issue #15)."""

    enabled: bool = True
    shrinkage: float = Field(
        10.0,
        ge=0,
        description="pseudo-users from everyone added to each segment: a small segment's "
        "popularity leans on the global one (chosen on validation among 10, 100, 1000)",
    )
    max_properties: int = Field(
        8, ge=1, le=64, description="most declared profile properties that form segments"
    )


class PipelineConfig(_Strict):
    retrieval: RetrievalConfig
    ranking: RankingConfig = Field(default_factory=RankingConfig)
    rerank: RerankConfig = Field(default_factory=RerankConfig)
    #: README: Exploration in serving (``recsmith.exploration``); left out of dumps when unset,
    #: so a manifest without exploration stays what older versions wrote and read
    explore: ExploreConfig | None = Field(None, exclude_if=lambda value: value is None)
    #: README: Placements; left out of dumps when empty, as ``explore``
    placements: dict[str, PlacementConfig] = Field(
        default_factory=dict, exclude_if=lambda value: not value
    )
    calibration: CalibrationConfig = Field(default_factory=CalibrationConfig)
    segments: SegmentsConfig = Field(default_factory=SegmentsConfig)
    #: README: Exploration in serving, contextual arms; left out of dumps when unset
    contextual: ContextualConfig | None = Field(None, exclude_if=lambda value: value is None)

    @model_validator(mode="after")
    def _contextual_arms(self) -> PipelineConfig:
        names = [WHOLE, *(s.name for s in self.retrieval.sources)]
        bandits = [("contextual", self.contextual)] + [
            (f"placements.{name}.contextual", p.contextual) for name, p in self.placements.items()
        ]
        for where, bandit in bandits:
            for arm in bandit.arms if bandit is not None else ():
                if arm not in names:
                    raise ValueError(
                        f"{where}.arms: {arm!r} is not {WHOLE!r} or a retrieval source"
                    )
        return self

    @model_validator(mode="after")
    def _placements_resolve(self) -> PipelineConfig:
        for name, placement in self.placements.items():
            if (problem := placement_name_problem(name)) is not None:
                raise ValueError(problem)
            try:
                placement.resolved(self.rerank)
            except pydantic.ValidationError as exc:
                err = exc.errors()[0]
                loc, reason = reworded(err, RULE_TYPES)
                if err["type"] == "extra_forbidden":
                    reason = unknown_key(PipelineConfig, ("rerank", *loc))
                where = ".".join(str(p) for p in loc)
                raise ValueError(f"placements.{name}.rerank.{where}: {reason}") from None
        return self

    def for_placement(self, name: str) -> PipelineConfig:
        """This config as placement ``name`` serves it (its ``[rerank]`` resolved, its own
        ``[explore]`` when it has one)."""
        placement = self.placements[name]
        rerank = placement.resolved(self.rerank)
        explore = self.explore if placement.explore is None else placement.explore
        return self.model_copy(update={"rerank": rerank, "placements": {}, "explore": explore})

    @model_validator(mode="after")
    def _explored_source(self) -> PipelineConfig:
        sources = [s.name for s in self.retrieval.sources]
        policies = [("explore", self.explore)] + [
            (f"placements.{name}.explore", p.explore) for name, p in self.placements.items()
        ]
        for where, explore in policies:
            named = explore.source if explore is not None else None
            if named is not None and named not in sources:
                raise ValueError(f"{where}.source {named!r} is not a retrieval source")
        return self


def placement_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a placement (None: it can); live rule files name them too, and
    requests' ``?placement=`` is checked against the same ``PLACEMENT_PATTERN``."""
    if re.fullmatch(PLACEMENT_PATTERN, name):
        return None
    # one character matches the pattern exactly when it is a character a name may hold
    bad = next((c for c in name if not re.fullmatch(PLACEMENT_PATTERN, c)), None)
    why = (
        f"holds {bad!r}"
        if bad is not None
        else f"has {len(name)} characters"
        if name
        else "is empty"
    )
    rule = PATTERN_MEANINGS[PLACEMENT_PATTERN].removeprefix("a placement name: ")
    return f"placement name {name!r} {why}: a placement name is {rule}"


def load_pipeline_config(path: Path) -> PipelineConfig:
    """Parse and validate a pipeline TOML file; errors name the offending key."""
    if not path.is_file():
        raise FileNotFoundError(f"--pipeline: no such file: {path}")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ValidationError("--pipeline", f"{path}: not valid TOML ({exc})") from None
    try:
        return PipelineConfig.model_validate(raw)
    except pydantic.ValidationError as exc:
        # our validators' own words; a rule's missing type names the types (its only union)
        err = exc.errors()[0]
        loc, reason = reworded(err, RULE_TYPES)
        if err["type"] == "extra_forbidden":  # a typo, or a key of another section or version
            reason = unknown_key(PipelineConfig, loc) + _dotted_placement_hint(raw, loc)
        where = ".".join(str(p) for p in loc)  # empty for the whole file's checks
        raise ValidationError(f"pipeline {where}".rstrip(), reason) from None


def _dotted_placement_hint(raw: dict[str, Any], loc: tuple[Any, ...]) -> str:
    """A table under ``[placements.NAME]`` is most likely a dotted name left unquoted
    (``[placements.email.v2]`` is TOML for table ``v2`` in placement ``email``): say how to quote
    it, since "unknown key" alone does not tell why."""
    if len(loc) != 3 or loc[0] != "placements":
        return ""
    if not isinstance(raw.get("placements", {}).get(loc[1], {}).get(loc[2]), dict):
        return ""
    return f"; a placement name holding '.' is quoted: [placements.\"{loc[1]}.{loc[2]}\"]"


def default_pipeline_config() -> PipelineConfig:
    """The recommended default (``default.toml`` in this package; ``examples/pipeline.toml`` is
    the same file, commented, for users to copy)."""
    text = resources.files("recsmith.pipeline").joinpath("default.toml").read_text()
    return PipelineConfig.model_validate(tomllib.loads(text))
