"""A small pipeline with a categorised catalogue, for the live-rules tests (HTTP and processes).

Items ``i{n}`` are in category ``c{n % 3}``: a rule on a category has an independent oracle in
the item's number.
"""

from __future__ import annotations

from typing import Any

from recsmith.config import EventSettings
from recsmith.events.schema import Item
from recsmith.events.validate import validate_events
from recsmith.pipeline.artifact import train_pipeline
from recsmith.pipeline.config import PipelineConfig
from recsmith.pipeline.runtime import Pipeline


def category_of(item_id: str) -> str:
    return f"c{int(item_id.removeprefix('i')) % 3}"


def catalogue(n_items: int) -> list[Item]:
    return [Item(item_id=f"i{n}", categories=[category_of(f"i{n}")]) for n in range(n_items)]


def rules_pipeline(records: list[dict[str, Any]], **config: Any) -> Pipeline:
    """An ItemKNN pipeline without a ranker over ``records``, its items categorised."""
    frame, _ = validate_events(records, EventSettings())
    n_items = 1 + max(int(r["item_id"].removeprefix("i")) for r in records)
    spec = {
        "retrieval": {"sources": [{"name": "knn", "model": "itemknn", "quota": 40}]},
        "ranking": {"enabled": False},
        **config,
    }
    return train_pipeline(
        PipelineConfig.model_validate(spec),
        frame,
        dict(EventSettings().weights),
        items=catalogue(n_items),
    )
