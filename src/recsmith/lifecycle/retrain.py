"""``recsmith retrain``: train a candidate on the store's events, judge it against the current
release on the newest holdout, and deploy it only when every gate passes.

The figures of both sides and the gates' verdicts go into the deployed release's manifest
(``retrain``), so ``recsmith releases`` and an auditor can see why it shipped. The deployed
candidate is trained again on all events, holdout included: the holdout measured the config on
data it had not seen, and the release should not ignore the newest week to keep that promise.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from recsmith.bundle import ModelBundle, read_manifest
from recsmith.config import Weight
from recsmith.errors import ValidationError
from recsmith.events.schema import Item
from recsmith.features.interactions import Interactions
from recsmith.features.items import ItemCatalog
from recsmith.governance.release_check import check_release
from recsmith.governance.releases import ModelRegistry
from recsmith.lifecycle.gate import Gate
from recsmith.lifecycle.holdout import newest_holdout
from recsmith.lifecycle.judge import Candidate, Judgement, judge
from recsmith.monitoring.profile import KEY as PROFILE
from recsmith.pipeline.artifact import load_artifact, save_pipeline
from recsmith.pipeline.config import PipelineConfig
from recsmith.pipeline.runtime import Pipeline


@dataclass(frozen=True)
class GateResult:
    gate: str
    candidate: float
    current: float | None
    threshold: float | None
    passed: bool


@dataclass(frozen=True)
class RetrainResult:
    current: str | None
    deployed: str | None
    judgement: Judgement
    gates: list[GateResult]
    holdout: dict[str, int]
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)

    def as_dict(self) -> dict[str, Any]:
        j = self.judgement
        return {
            "passed": self.passed,
            "current": self.current,
            "deployed": self.deployed,
            "holdout": self.holdout,
            "users": j.users,
            "k": j.k,
            "candidate_metrics": j.candidate,
            "current_metrics": j.current,
            "paired": None
            if j.paired is None
            else {
                "mean_diff": j.paired.mean_diff,
                "ci": [j.paired.ci_low, j.paired.ci_high],
                "p_value": j.paired.p_value,
            },
            "gates": [g.__dict__ for g in self.gates],
            "notes": self.notes,
        }


def candidate_of(manifest: Mapping[str, Any]) -> Candidate:
    """The config a release was trained with, to train it again on newer data."""
    if manifest.get("kind") == "pipeline":
        return Candidate(pipeline=PipelineConfig.model_validate(manifest["pipeline"]))
    return Candidate(model=str(manifest["model"]), params=dict(manifest.get("config") or {}))


def retrain(
    registry: ModelRegistry,
    events: pd.DataFrame,
    weights: Mapping[str, Weight],
    gates: Sequence[Gate],
    *,
    candidate: Candidate | None = None,
    items: list[Item] | None = None,
    half_life_days: float | None = None,
    profiles: Mapping[str, Mapping[str, Any]] | None = None,
    holdout_fraction: float = 0.1,
    deploy: bool = True,
) -> RetrainResult:
    """See the module docstring; ``deploy=False`` judges only (a dry run). ``profiles`` (user
    id → properties) reach the candidate both when judged and when trained for release."""
    items = items or []
    ks = {g.k for g in gates}
    if len(ks) != 1:
        raise ValidationError("--gate", f"every gate must use the same k (got {sorted(ks)})")
    version = registry.current()
    current = None
    until_us = None
    if version is not None:
        where = registry.path(version)
        manifest = read_manifest(where)
        current = load_artifact(where)
        until_us = (manifest.get(PROFILE) or {}).get("last_ts_us")
        candidate = candidate or candidate_of(manifest)
    if candidate is None:
        raise ValidationError(
            "--pipeline",
            "the registry has no current release to retrain: give --pipeline or --model",
        )
    holdout = newest_holdout(events, holdout_fraction, until_us)
    metric = gates[0].metric
    judged = judge(
        candidate,
        current,
        holdout,
        weights,
        k=ks.pop(),
        gate_metric=metric,
        items=items,
        half_life_days=half_life_days,
        profiles=profiles,
    )
    results = [_apply(g, judged) for g in gates]
    notes = [judged.note] if judged.note else []
    if version is not None and until_us is None:
        notes.append(
            f"{version} has no data profile (trained before they were recorded): the holdout may "
            "overlap its training data, which favours it"
        )
    if current is None:
        notes.append("no current release: the gates compare nothing and pass")
    summary = {
        "start_us": holdout.start_us,
        "train_events": len(holdout.train),
        "test_events": len(holdout.test),
    }
    result = RetrainResult(version, None, judged, results, summary, notes)
    if not (deploy and result.passed):
        return result
    deployed = _train_and_deploy(
        registry, candidate, events, weights, items, half_life_days, profiles, result
    )
    return RetrainResult(version, deployed, judged, results, summary, notes)


def _apply(gate: Gate, judged: Judgement) -> GateResult:
    value = judged.candidate[gate.metric]
    current = None if judged.current is None else judged.current[gate.metric]
    if current is None and gate.needs_current:
        return GateResult(gate.text, value, None, None, True)
    return GateResult(
        gate.text, value, current, gate.threshold(current), gate.passes(value, current)
    )


def _train_and_deploy(
    registry: ModelRegistry,
    candidate: Candidate,
    events: pd.DataFrame,
    weights: Mapping[str, Weight],
    items: list[Item],
    half_life_days: float | None,
    profiles: Mapping[str, Mapping[str, Any]] | None,
    result: RetrainResult,
) -> str:
    catalog = ItemCatalog.from_items(items) if items else None
    data = Interactions.from_events(
        events, weights, half_life_days=half_life_days, catalog=catalog, profiles=profiles
    )
    trained = candidate.train(events, data, weights, items, half_life_days, profiles)
    trained.manifest["retrain"] = result.as_dict()
    registry.root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".retrain-", dir=registry.root))
    try:
        out = staging / "release"
        if isinstance(trained, Pipeline):
            save_pipeline(trained, out)
        else:
            assert isinstance(trained, ModelBundle)
            trained.save(out)
        check_release(out)
        version = registry.publish(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    registry.deploy(version)
    registry.request_reload()
    return version
