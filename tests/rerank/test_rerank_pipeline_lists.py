"""The request path's speed-ups leave every list as it was: the pipeline's answers with the
closed-form category MMR equal those of the greedy step loop it replaced (which
``tests/rerank/test_rerank_mmr.py`` checks against a textbook loop), on a fixed simulated shop."""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import numpy as np
from stepwise import StepwiseCategories

from recsmith.config import EventSettings
from recsmith.events.validate import validate_events, validate_items
from recsmith.pipeline.artifact import train_pipeline
from recsmith.pipeline.config import PipelineConfig
from recsmith.rerank import CategorySimilarity
from recsmith.simulate import simulate

CONFIG = {
    "retrieval": {
        "sources": [
            {"name": "knn", "model": "itemknn", "quota": 40},
            {"name": "recent", "model": "itemknn", "use": "recent", "quota": 20},
            {"name": "trending", "model": "trending", "quota": 10},
            {"name": "new", "kind": "new_arrivals", "quota": 5},
        ]
    },
    "ranking": {"enabled": True, "label_share": 0.2, "params": {"n_estimators": 20}},
    "rerank": {"diversity": 0.3, "max_per_category": 2},
}


def lists(item_ids: Any) -> list[list[str]]:
    return [[str(i) for i in row] for row in item_ids]


def test_diversified_lists_equal_the_step_loop() -> None:
    sim = simulate(n_users=300, n_items=200, seed=11)
    events, bad_events = validate_events(sim.events, EventSettings())
    items, bad_items = validate_items(sim.items)
    assert not bad_events and not bad_items
    config = PipelineConfig.model_validate(CONFIG)
    pipe = train_pipeline(config, events, dict(EventSettings().weights), items=items)
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
