"""The request path's speed-ups leave every list as it was: the pipeline's answers with the
closed-form category MMR equal those of the greedy step loop it replaced (which
``tests/rerank/test_rerank_mmr.py`` checks against a textbook loop), on a fixed simulated shop."""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from recsmith.config import EventSettings
from recsmith.events.schema import Item
from recsmith.pipeline.artifact import train_pipeline
from recsmith.pipeline.config import PipelineConfig
from recsmith.rerank import CategorySimilarity


@dataclass(frozen=True)
class StepwiseCategories:
    """Category similarity behind a type MMR does not recognise: forces the greedy step loop."""

    inner: CategorySimilarity

    def block(self, items: np.ndarray) -> Any:
        return self.inner.block(items)


def lists(item_ids: Any) -> list[list[str]]:
    return [[str(i) for i in row] for row in item_ids]


def test_diversified_lists_equal_the_step_loop(
    config: PipelineConfig, events: pd.DataFrame, items: list[Item]
) -> None:
    diverse = PipelineConfig.model_validate(
        {**config.model_dump(), "rerank": {"diversity": 0.3, "max_per_category": 2}}
    )
    pipe = train_pipeline(diverse, events, dict(EventSettings().weights), items=items)
    stepwise = copy.copy(pipe)
    stepwise.reranker = replace(
        pipe.reranker, similarity=StepwiseCategories(CategorySimilarity(pipe.table.category))
    )
    users = np.asarray([*pipe.bundle.users.external_ids, "nobody"], dtype=object)
    recent = [[] for _ in users[:-1]] + [list(pipe.bundle.items.external_ids[:3])]
    for diversity in (None, 0.7):
        fast = pipe.answer(users, 10, recent=recent, diversity=diversity)
        slow = stepwise.answer(users, 10, recent=recent, diversity=diversity)
        assert lists(fast.lists.item_ids) == lists(slow.lists.item_ids)
        assert fast.sources == slow.sources
    # the check has teeth: diversity changed many lists
    plain = lists(pipe.answer(users, 10, recent=recent, diversity=0.0).lists.item_ids)
    changed = np.mean([a != b for a, b in zip(plain, lists(fast.lists.item_ids), strict=True)])
    assert changed > 0.3, changed
