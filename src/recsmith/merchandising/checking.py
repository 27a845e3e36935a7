"""Checking live rules against the catalogue of the release that will apply them.

Training refuses a filter no available item passes and a pin of an item without events
(``pipeline.rule_check``); live rules are checked by the same code, against the release being
served as the store's catalogue stands now (the server's, kept current by ``catalog_sync``; the
CLI's, by applying the store's whole catalogue to the release it loads).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recsmith.bundle import NeedsPipeline
from recsmith.config import ServingSettings
from recsmith.governance.releases import ModelRegistry
from recsmith.merchandising.document import RuleDocument
from recsmith.pipeline.artifact import load_artifact
from recsmith.pipeline.rule_check import RuleWarning
from recsmith.pipeline.runtime import Pipeline
from recsmith.store.base import EventStore

#: Why a single-model deployment cannot take rules.
NEEDS_PIPELINE = (
    "live rules re-rank a pipeline's lists; this deployment serves a single model, which has no "
    "catalogue to apply them to (recsmith train --pipeline)"
)


def check_served(document: RuleDocument, served: Any) -> list[RuleWarning]:
    """ValidationError naming the rule and field when ``served`` refuses ``document``;
    NeedsPipeline when ``served`` is a single model. Returns the warnings of rules and values
    that match no item of its catalogue (accepted: see ``pipeline.rule_check``)."""
    if not isinstance(served, Pipeline):
        raise NeedsPipeline(NEEDS_PIPELINE)
    document.check(served.table, served.items)
    return document.warnings(served.table, served.items)


def release_dir(serving: ServingSettings, model_dir: Path | None) -> Path | None:
    """The release a command checks rules against: ``model_dir`` when given, else the
    registry's current release, else ``serving.model_dir``; None when there is none."""
    if model_dir is not None:
        return model_dir
    if serving.registry is not None:
        version = ModelRegistry(serving.registry).current()
        if version is not None:
            return ModelRegistry(serving.registry).path(version)
    if serving.model_dir is not None and (serving.model_dir / "manifest.json").is_file():
        return serving.model_dir
    return None


def check_offline(document: RuleDocument, release: Path, store: EventStore) -> list[RuleWarning]:
    """``check_served`` against the release in ``release`` with the store's catalogue."""
    served = load_artifact(release)
    if isinstance(served, Pipeline):
        served = served.with_catalog(store.items(), 0)
    return check_served(document, served)
