"""A transitions source reading a known user's items since training (``Queries.latest``) in a
pipeline: grown catalogues, repeat purchases, unknown and surplus recent items, releases
written before the steps were stored, and ``use = "recent"``. Expected lists are worked out by
hand from the rules below (``models.transitions``)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from recsmith.config import EventSettings
from recsmith.events.schema import Item
from recsmith.pipeline.artifact import load_pipeline, save_pipeline, train_pipeline
from recsmith.pipeline.config import PipelineConfig
from recsmith.pipeline.runtime import Pipeline
from recsmith.testing.recommender import view_events

# Each user's views, oldest first. With steps 1 every neighbour pair adds 1 to a rule and each
# item's rules sum to one: a -> b 1/2, a -> g 1/2 (u1, u5); b -> c 2/3, b -> a 1/3 (u2, u3,
# u7); c -> a 1 (u6); e -> f 1 (u4); d -> h 1 (u8). u1 (history 2): b weighs 1, a 1/2.
SEQUENCES = {"u1": "ab", "u2": "bc", "u3": "bc", "u4": "ef", "u5": "ag", "u6": "ca"}
SEQUENCES |= {"u7": "ba", "u8": "dh"}
SEQ = {"name": "seq", "model": "transitions", "quota": 10, "params": {"steps": 1, "history": 2}}


def train(*sources: dict[str, Any]) -> Pipeline:
    start = int(time.time()) - 10 * 86_400  # one hour between a user's steps
    frame = view_events(
        [
            (user, item, start + 3_600 * (10 * u + step))
            for u, (user, items) in enumerate(SEQUENCES.items())
            for step, item in enumerate(items)
        ]
    )
    config = PipelineConfig.model_validate(
        {"retrieval": {"sources": list(sources or [SEQ])}, "ranking": {"enabled": False}}
    )
    return train_pipeline(config, frame, dict(EventSettings().weights))


@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    return train()


def proposed(
    pipeline: Pipeline, recent: list[str], source: str = "seq", **kwargs: Any
) -> list[str]:
    """u1's items that ``source`` proposed, in the answer's order."""
    answer = pipeline.answer(["u1"], 10, recent=[recent], **kwargs)
    ids = answer.lists.item_ids[0]
    return [i for i, s in zip(ids, answer.sources[0], strict=False) if source in s]


def test_without_recent_items_u1_is_answered_from_training(pipeline: Pipeline) -> None:
    # b (1): c 2/3 (a seen); a (1/2): g 1/4
    assert proposed(pipeline, []) == ["c", "g"]


def test_an_item_added_since_training_takes_no_step(pipeline: Pipeline) -> None:
    grown = pipeline.with_catalog([Item(item_id="new1")], 1)
    assert proposed(grown, ["new1"]) == proposed(grown, []) == ["c", "g"]
    # beside a known one it neither moves b back: e (1), b (1/2): f 1, c 1/3
    assert proposed(grown, ["new1", "e"]) == ["f", "c"]


def test_unknown_items_leave_no_gap(pipeline: Pipeline) -> None:
    # e newest (1), d the next step (1/2): h 1/2; b, a pushed past history 2
    assert proposed(pipeline, ["e", "zzz-unknown", "e", "d"]) == ["f", "h"]


def test_recent_items_beyond_history_are_dropped(pipeline: Pipeline) -> None:
    # e (1), d (1/2); a, a third step, is past history 2: no g (a -> g), no b (a -> b)
    assert proposed(pipeline, ["e", "d", "a"]) == ["f", "h"]


def test_include_seen_scores_the_users_own_items(pipeline: Pipeline) -> None:
    # a (1), b (1/2): b 1/2, g 1/2, c 1/3, a 1/6; nothing excluded, the user's own items too
    lists = proposed(pipeline, ["a"], include_seen=True)
    assert sorted(lists[:2]) == ["b", "g"] and lists[2:] == ["c", "a"]


def test_a_release_without_steps_answers_from_training(pipeline: Pipeline, tmp_path: Path) -> None:
    save_pipeline(pipeline, tmp_path / "p")
    steps = list((tmp_path / "p").rglob("user_steps_*"))
    assert steps  # the release as written now holds them
    for path in steps:
        path.unlink()
    old = load_pipeline(tmp_path / "p")
    # e is excluded (seen) but takes no step: b (1), a (1/2) as at training
    assert proposed(old, ["e"]) == ["c", "g"]
    assert proposed(pipeline, ["e"]) == ["f", "c"]


def test_a_recent_source_ignores_the_online_order() -> None:
    recent = {**SEQ, "name": "seqr", "use": "recent"}
    both = train(SEQ, recent)
    # seqr scores the recent row: u1's training items a, b and e, each 1: f 1, c 2/3, g 1/2
    assert proposed(both, ["e"], "seqr") == ["f", "c", "g"]
    assert proposed(both, ["e"]) == ["f", "c"]
    # repeat purchases: seqr still never proposes the row's own items (a, b); the online order
    # would score a (1), b (1/2) and propose b and a
    assert proposed(both, ["a"], "seqr", include_seen=True) == ["c", "g"]


def test_the_online_order_is_built_only_where_it_is_read(pipeline: Pipeline) -> None:
    def latest(p: Pipeline, user: str) -> Any:
        return p.queries(np.asarray([user], dtype=object), None, [["e", "d"]], None).latest

    assert latest(pipeline, "u1") is not None
    assert latest(pipeline, "a-visitor") is None  # scored from ``recent`` alone
    mixed = pipeline.queries(
        np.asarray(["a-visitor", "u1"], dtype=object), None, [["e"], ["d"]], None
    )
    assert mixed.latest is not None and mixed.latest[[0]].nnz == 0 and mixed.latest[[1]].nnz == 1
    only_recent = train({**SEQ, "use": "recent"})
    assert latest(only_recent, "u1") is None
