"""Training a whole pipeline, and its artifact: one directory, like a single model's, plus the
extra sources, the ranker (LightGBM text format), feature aggregates and the catalogue.

``load_artifact`` opens either kind, so ``recsmith recommend`` and ``recsmith serve`` take a
pipeline directory exactly as they take a model directory.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError as PydanticValidationError

from recsmith.array_files import load_arrays, read_arrays, save_arrays
from recsmith.atomic_dir import atomic_directory
from recsmith.bundle import ModelBundle, read_manifest
from recsmith.config import Weight
from recsmith.events.schema import Item, User
from recsmith.fairness.config_check import check_fairness
from recsmith.features.interactions import Interactions
from recsmith.features.items import ItemCatalog
from recsmith.gc_pause import paused_gc
from recsmith.models.base import sparse_from_arrays, sparse_to_arrays
from recsmith.models.learned import learning_warnings
from recsmith.models.registry import create, model_class
from recsmith.models.topk import TopK
from recsmith.monitoring.features import KEY as FEATURES_KEY
from recsmith.monitoring.features import pipeline_feature_profile
from recsmith.monitoring.profile import data_profile
from recsmith.monitoring.scores import KEY as SCORES_KEY
from recsmith.monitoring.scores import pipeline_score_profile
from recsmith.pipeline.calibration import calibrate, calibration_summary
from recsmith.pipeline.config import PipelineConfig
from recsmith.pipeline.item_attributes import ItemAttributes
from recsmith.pipeline.rule_check import check_rules, pipeline_rule_warnings
from recsmith.pipeline.runtime import Pipeline
from recsmith.pipeline.source_tuning import tune_sources
from recsmith.pipeline.training import (
    feature_state,
    fit_models,
    ranker_summary,
    recent_items,
    train_ranker,
)
from recsmith.ranking.features import FeatureState, feature_names
from recsmith.ranking.ltr import LambdaMARTRanker, importance_summary
from recsmith.rerank.catalog_view import ItemTable
from recsmith.retrieval.ann import (
    STORED_MARGIN,
    ItemIndex,
    ann_available,
    known_lists,
    stores_lists,
)
from recsmith.segments.popularity import SegmentPopularity
from recsmith.sparse_rows import format_checked
from recsmith.stages import StageHook, no_stages

log = logging.getLogger(__name__)

_SPARSE_STATE = (
    "user_category_share",
    "user_category_last",
    "user_property_share",
    "segment_item_share",
)
#: Key prefix of the segment popularity table in ``pipeline/`` (``pipeline.npz`` in format 1).
SEGMENTS = "segments."


def check_prebuilt(
    data: Interactions, events: pd.DataFrame, items: list[Item], half_life_days: float | None
) -> None:
    """``train_pipeline``'s ``data`` must be what it would build from its own arguments: the
    pipeline is served on ``items`` and evaluated on ``data``'s indices, so a matrix of other
    events, decay or catalogue would train silently on what the caller did not ask for."""
    if len(data.event_ts) != len(events):
        raise ValueError(f"data: {len(data.event_ts)} events, but events has {len(events)} rows")
    if data.half_life_days != half_life_days:
        raise ValueError(
            f"data: half_life_days {data.half_life_days}, but half_life_days is {half_life_days}"
        )
    built = [] if data.catalog is None else list(data.catalog.item_ids)
    if built != [it.item_id for it in items]:
        raise ValueError(
            f"data: its catalogue has {len(built)} item ids, not those of items ({len(items)})"
        )


def profile_users(profiles: Mapping[str, Mapping[str, Any]] | None) -> list[User]:
    """``profiles`` (user id → properties, as ``Interactions`` holds them and the evaluation and
    retrain paths load them from the store) as the users ``train_pipeline`` takes: a pipeline
    fitted on a matrix it was handed gets its users' profiles from ``users=`` alone."""
    return [User(user_id=u, properties=dict(p)) for u, p in (profiles or {}).items()]


def train_pipeline(
    config: PipelineConfig,
    events: pd.DataFrame,
    weights: dict[str, Weight],
    *,
    items: list[Item] | None = None,
    users: list[User] | None = None,
    half_life_days: float | None = None,
    progress: StageHook = no_stages,
    data: Interactions | None = None,
    **info: object,
) -> Pipeline:
    """Fit every stage on ``events`` (see ``pipeline.training`` for the leak-free ranker);
    ``users``' profiles feed the ranker's profile features; ``progress`` hears of each stage
    (``recsmith.stages``). ``data``: ``events`` as Interactions, when the caller built them
    already (with these weights, half-life and items' catalogue: evaluation and retraining
    score on them), so the events are not sorted again (6.9–9.2 s per million events under load,
    BENCHMARKS §72); ``users``' profiles replace its own, as if built here. ``ValueError`` when
    its event count, half-life or catalogue differ from those arguments."""
    started = time.perf_counter()
    items = items or []
    if data is not None:
        check_prebuilt(data, events, items, half_life_days)
    profiles = {u.user_id: u.properties for u in users or []}
    with progress("interaction matrix"):
        full = (
            Interactions.from_events(
                events,
                weights,
                half_life_days=half_life_days,
                catalog=ItemCatalog.from_items(items) if items else None,
                profiles=profiles,
            )
            if data is None
            else data.with_profiles(profiles)
        )
    attrs = ItemAttributes.from_items(items, full.items, config.ranking.max_property_features)
    table = ItemTable.from_items(items, full.items) if items else ItemTable.unknown(full.n_items)
    # before minutes of fitting: every placement's re-ranking as well as the pipeline's own
    for checked in [config.rerank, *(config.for_placement(n).rerank for n in config.placements)]:
        check_rules(checked.rules, table, full.items)
        check_fairness(checked.exposure, checked.calibration, checked.calibration_property, table)
    warnings = pipeline_rule_warnings(config, table, full.items)
    for warning in warnings:
        log.warning("pipeline %s", warning)
    if any(s.tune for s in config.retrieval.sources):
        with progress("source tuning"):
            config, tuning = tune_sources(config, full, seed=config.ranking.random_state)
    else:
        tuning = {}
    calibration: dict[str, object] = {}
    use_ranker = True
    if config.calibration.enabled:
        with progress("calibration on a validation split"):
            chosen = calibrate(config, full, attrs)
        config, use_ranker, calibration = chosen.config, chosen.use_ranker, chosen.report
    if use_ranker:
        with progress("ranker on its label windows"):
            ranker, ranker_report = train_ranker(config, full, attrs)
    else:
        ranker, ranker_report = None, {"outcome": "not_chosen", "chosen": calibration["chosen"]}
    model_sources = [s for s in config.retrieval.sources if s.kind == "model"]
    primary = model_sources[0] if model_sources else None
    with progress("sources on all events"):
        bundle = ModelBundle.train(
            full,
            create(primary.model, **primary.params)
            if primary and primary.model
            else create("popular"),
            kind="pipeline",
            pipeline=config.model_dump(),
            data_profile=data_profile(events),
            **({"rule_warnings": [w.to_json() for w in warnings]} if warnings else {}),
            **info,
        )
        rest = config.model_copy(
            update={
                "retrieval": config.retrieval.model_copy(
                    update={"sources": [s for s in config.retrieval.sources if s is not primary]}
                )
            }
        )
        models = fit_models(rest, full)
    if primary is not None:
        models[primary.name] = bundle.model
    # the bundle's own warning is by model name, and the stand-in's (``popular`` when no source
    # is a model) names no source: the manifest's are by source, over the sources only
    bundle.manifest.pop("fit_warnings", None)
    if warnings_by_source := learning_warnings(models, full):
        bundle.manifest["fit_warnings"] = warnings_by_source
    with progress("feature state"):
        state = feature_state(full, attrs, config.ranking)
    segments = None
    if config.segments.enabled and users:
        with progress("segment popularity"):
            segments = SegmentPopularity.build(
                full,
                {u.user_id: u.properties for u in users},
                max_properties=config.segments.max_properties,
                shrinkage=config.segments.shrinkage,
            )
        bundle.manifest["segments"] = {
            "properties": segments.properties.tolist(),
            "segments": len(segments.values),
            "profiled_users": len(segments.profiled),
            "shrinkage": segments.shrinkage,
        }
    bundle.manifest["fit_seconds"] = round(time.perf_counter() - started, 3)
    # the primary model's bundle named it ``ease-…``: the release is the whole pipeline
    bundle.manifest["version"] = "pipeline-" + bundle.version.split("-", 1)[1]
    bundle.manifest["ranker"] = ranker is not None
    bundle.manifest["ranker_training"] = ranker_report
    bundle.manifest["ranker_summary"] = ranker_summary(ranker_report)
    if ranker is not None:
        bundle.manifest["ranker_importance"] = ranker.importance()
        bundle.manifest["ranker_features"] = importance_summary(ranker.importance())
    bundle.manifest["source_tuning"] = tuning
    if calibration:
        bundle.manifest["calibration"] = calibration
        bundle.manifest["calibration_summary"] = calibration_summary(calibration)
    pipeline = Pipeline(
        config,
        bundle,
        models,
        ranker,
        state,
        attrs,
        recent_items(full, config.retrieval.recent_items),
        items,
        segments=segments,
    )
    with progress("score profile"):  # what ``recsmith monitor`` compares served scores with
        bundle.manifest[SCORES_KEY] = pipeline_score_profile(pipeline)
    if ranker is not None:
        with progress("feature profile"):  # ... and the ranker's sampled input features
            bundle.manifest[FEATURES_KEY] = pipeline_feature_profile(pipeline, full)
    return pipeline


def save_pipeline(pipeline: Pipeline, path: Path) -> None:
    """Write ``pipeline`` to ``path`` all at once (``recsmith.atomic_dir``): a failure leaves
    whatever ``path`` held before."""
    with atomic_directory(path) as staging:
        _write_pipeline(pipeline, staging)


def _write_pipeline(pipeline: Pipeline, path: Path) -> None:
    pipeline.bundle.write(path)
    primary = pipeline.bundle.model
    for name, model in pipeline.models.items():
        if model is not primary:
            model.save(path / "sources" / name, answers_similar=False)  # the primary does
    quotas = {s.name: s.quota for s in pipeline.config.retrieval.sources}
    stored = 0  # bytes of the lists stored so far: the cap is over all sources
    for name, index in pipeline.indexes.items():
        (path / "ann").mkdir(exist_ok=True)
        index.save(path / "ann" / f"{name}.faiss")
        users = pipeline.models[name].embeddings[0]  # what its ``ANNSource`` queries with
        depth = quotas[name] + STORED_MARGIN
        if not stores_lists(len(users), depth, stored):
            log.info("source %s: %d users' lists are too large to store", name, len(users))
            continue
        lists = known_lists(index, users, depth)
        save_arrays(path / "ann" / f"{name}.known", {"ids": lists.ids, "scores": lists.scores})
        stored += lists.ids.nbytes + lists.scores.nbytes
    if pipeline.ranker is not None:
        pipeline.ranker.save(path / "ranker.txt")
    state = {f.name: getattr(pipeline.state, f.name) for f in fields(FeatureState)}
    arrays = {k: np.asarray(v) for k, v in state.items() if k not in _SPARSE_STATE}
    for name in _SPARSE_STATE:
        arrays.update(sparse_to_arrays(f"{name}.", state[name]))
    arrays.update({f"attr.{k}": v for k, v in pipeline.attrs.arrays().items()})
    arrays.update(sparse_to_arrays("recent.", pipeline.recent))
    if pipeline.segments is not None:
        arrays.update(pipeline.segments.arrays(SEGMENTS))
    save_arrays(path / "pipeline", arrays)
    # json.dumps, not model_dump_json: it escapes what UTF-8 cannot encode (a lone surrogate
    # stored before the door checked for them) instead of failing the whole training
    (path / "items.jsonl").write_text(
        "".join(json.dumps(item.model_dump(mode="json")) + "\n" for item in pipeline.items_catalog)
    )


def _read_item(line: str) -> Item:
    """One ``items.jsonl`` line. pydantic's fast parser refuses the escaped lone surrogates
    ``json.dumps`` writes, so those few lines go through ``json.loads``."""
    try:
        return Item.model_validate_json(line)
    except PydanticValidationError:
        return Item.model_validate(json.loads(line))


def _load_index(directory: Path, name: str) -> ItemIndex:
    """Source ``name``'s saved index, with its users' stored lists mapped when the release has
    them (releases written before them search every request)."""
    index = ItemIndex.load(directory / f"{name}.faiss")
    if (directory / f"{name}.known").is_dir():
        lists = load_arrays(directory / f"{name}.known")
        index.known = TopK(lists["ids"], lists["scores"])
    return index


def load_pipeline(path: Path) -> Pipeline:
    """The pipeline saved in ``path`` (see ``save_pipeline``)."""
    with paused_gc():  # hundreds of thousands of objects at once (see recsmith.gc_pause)
        return _load_pipeline(path)


def _load_pipeline(path: Path) -> Pipeline:
    bundle = ModelBundle.load(path)
    config = PipelineConfig.model_validate(bundle.manifest["pipeline"])
    models = {}
    for source in config.retrieval.sources:
        if source.kind != "model":
            continue
        where = path / "sources" / source.name
        models[source.name] = (
            model_class(json.loads((where / "model.json").read_text())["name"]).load(where)
            if where.is_dir()
            else bundle.model
        )
    arrays = read_arrays(path / "pipeline", path / "pipeline.npz")  # format 2 mapped, or 1
    state_kwargs: dict[str, object] = {}
    for f in fields(FeatureState):
        if f.name not in arrays and f"{f.name}.shape" not in arrays:
            continue  # trained before the field existed: its default (no such features)
        if f.name in _SPARSE_STATE:
            state_kwargs[f.name] = sparse_from_arrays(f"{f.name}.", arrays)
        else:
            value = arrays[f.name]
            scalar = {"reference_ts": int, "use_context": bool}.get(f.name)
            state_kwargs[f.name] = scalar(value) if scalar else value
    segments = SegmentPopularity.from_arrays(SEGMENTS, arrays)
    arrays = {k: v for k, v in arrays.items() if not k.startswith(SEGMENTS)}
    attrs = ItemAttributes(
        **{k.removeprefix("attr."): v for k, v in arrays.items() if k.startswith("attr.")}
    )
    recent = format_checked(sparse_from_arrays("recent.", arrays))
    lines = (path / "items.jsonl").read_text().splitlines()
    items = [_read_item(line) for line in lines if line]
    indexes = {
        s.name: _load_index(path / "ann", s.name)
        for s in config.retrieval.sources
        if (path / "ann" / f"{s.name}.faiss").is_file() and ann_available()
    }
    state = FeatureState(**state_kwargs)
    ranker = (
        LambdaMARTRanker.load(path / "ranker.txt", config.ranking.params)
        if (path / "ranker.txt").is_file()
        else None
    )
    names = feature_names(tuple(s.name for s in config.retrieval.sources), state)
    if ranker is not None and ranker.booster.num_feature() != len(names):
        # trained before its features changed (#15 added day of week and property features):
        # scoring would misread its columns, so the fused order serves until the next training
        log.warning(
            "release %s: its ranker was trained on %d features, this version computes %d; "
            "serving the fused order until the next training",
            bundle.version,
            ranker.booster.num_feature(),
            len(names),
        )
        ranker = None
    return Pipeline(
        config,
        bundle,
        models,
        ranker,
        state,
        attrs,  # type: ignore[arg-type]
        recent,
        items,
        indexes,
        segments,
    )


def load_artifact(path: Path) -> ModelBundle | Pipeline:
    """A model or a pipeline directory, whichever ``path`` holds."""
    if read_manifest(path).get("kind") == "pipeline":
        return load_pipeline(path)
    with paused_gc():
        return ModelBundle.load(path)
