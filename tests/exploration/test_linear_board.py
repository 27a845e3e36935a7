"""The contextual bandit's shared state: rounds shown and attributed clicks (through the real
attribution of ingested events) add up in the store to the sums worked out by hand, every worker
reads them, and a restarted server starts from them; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from recsmith.config import DecisionSettings, EventSettings
from recsmith.decisions.attribution import Attributor
from recsmith.decisions.record import Decision, decision
from recsmith.exploration.contextual import ContextualBoards, ContextualConfig, choose
from recsmith.exploration.linear_board import LinearBoard, model_key
from recsmith.store.base import EventStore
from recsmith.store.ingest import ingest_event_batches
from recsmith.store.open import open_store

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
SETTINGS = DecisionSettings()
ARMS = ("pipeline", "trending")
X1 = (1.0, 0.0, 0.0, 0.5, -2.0)  # a visitor's list (trending)
X2 = (1.0, 2.0, 1.0, 0.25, 1.0)  # a known user's list (pipeline)
X3 = (1.0, 3.0, 1.0, -1.0, 0.0)
ALPHA = 10.0  # a known user's list (trending), never clicked


def served(rid: str, unit: str, arm: str, context: tuple[float, ...]) -> Decision:
    return decision(
        rid,
        unit=unit,
        unit_kind="user",
        route="recommendations",
        release="r1",
        item_ids=["i1", "i2"],
        scores=[2.0, 1.0],
        sources=[("trending",), ("als",)],
        served_at=T0,
        arm=arm,
        arm_propensity=0.75,
        arm_context=context,
    )


def click(n: int, user: str, item: str, **extra: Any) -> dict[str, Any]:
    ts = (T0 + timedelta(minutes=n + 1)).isoformat()
    return {"event_id": f"e{n}", "user_id": user, "item_id": item, "event_type": "click",
            "timestamp": ts, **extra}  # fmt: skip


def test_shown_and_attributed_rounds_add_up_to_the_hand_computed_sums(
    backend: tuple[EventStore, str],
) -> None:
    store, url = backend
    worker1 = LinearBoard(store, ARMS, 5, SETTINGS.kinds())
    worker2 = LinearBoard(store, ARMS, 5, SETTINGS.kinds())
    lists = [served("r1", "v1", "trending", X1), served("r2", "u2", "pipeline", X2),
             served("r3", "u3", "trending", X3)]  # fmt: skip
    store.append_decisions(lists)
    for d in lists:  # the decision log keeps the arm, its propensity and its context
        assert store.get_decision(d.recommendation_id) == d
    worker1.shown("trending", X1)
    worker1.shown("pipeline", X2)
    worker2.shown("trending", X3)
    # worker 2 gets the events: r1 clicked twice (explicitly, then by the window rule), r2 once,
    # a view of r2 (no KPI) and a click on a list without an arm count nothing
    events = [
        click(0, "v1", "i1", recommendation_id="r1", position=1),
        click(1, "v1", "i2"),
        click(2, "u2", "i2", recommendation_id="r2"),
        {**click(3, "u2", "i1", recommendation_id="r2"), "event_type": "view"},
    ]
    ingest_event_batches(store, [events], EventSettings(), source="test",
                         attributor=Attributor(store, SETTINGS),
                         on_attributed=worker2.attributed)  # fmt: skip
    worker1.sync()
    worker2.sync()
    worker1.sync()
    x1, x2, x3 = (np.asarray(x) for x in (X1, X2, X3))
    eye = np.eye(5)
    want_a = [eye + np.outer(x2, x2), eye + np.outer(x1, x1) + np.outer(x3, x3)]
    want_b = [x2, 2 * x1]  # reward: the attributed clicks of each round
    for board in (worker1, worker2):
        np.testing.assert_allclose(board.state.a, want_a, rtol=1e-12)
        np.testing.assert_allclose(board.state.b, want_b, rtol=1e-12)
    reopened = open_store(url)  # a restarted server: a new process, a new connection
    try:
        fresh = LinearBoard(reopened, ARMS, 5, SETTINGS.kinds())
        fresh.sync()
        np.testing.assert_allclose(fresh.state.a, want_a, rtol=1e-12)
        np.testing.assert_allclose(fresh.state.b, want_b, rtol=1e-12)
        other = LinearBoard(reopened, ARMS, 6, SETTINGS.kinds())  # another shape: learns afresh
        other.sync()
        np.testing.assert_array_equal(other.state.a, np.broadcast_to(np.eye(6), (2, 6, 6)))
    finally:
        reopened.close()


def test_attributions_without_a_contextual_arm_add_nothing(backend: tuple[EventStore, str]) -> None:
    store, _ = backend
    board = LinearBoard(store, ARMS, 5, SETTINGS.kinds())
    frame = pd.DataFrame({"event_type": ["click"], "arm": [None], "arm_context": [None]})
    board.attributed(frame)
    assert board.cells() == []


def test_choices_are_the_hand_computed_ones_and_replay(backend: tuple[EventStore, str]) -> None:
    """LinUCB on a stored state picks the arm of the larger bound worked out by hand (propensity
    1); linear Thompson replays its arm and propensity for one recommendation id."""
    store, _ = backend
    x = np.asarray([X2])
    # arm 0 (pipeline) clicked in its one round, arm 1 (trending) shown once and never clicked
    key = model_key(ARMS, 5, "click")
    pairs = [(i, j) for i in range(5) for j in range(5)]
    store.add_linear_cells(
        [(key, "pipeline", 5 * i + j, X2[i] * X2[j]) for i, j in pairs]
        + [(key, "pipeline", 25 + i, X2[i]) for i in range(5)]
        + [(key, "trending", 5 * i + j, X3[i] * X3[j]) for i, j in pairs]
    )
    board = ContextualBoards(store, SETTINGS.kinds()).board(
        ContextualConfig(arms=list(ARMS), policy="linucb", alpha=ALPHA), 5
    )
    bounds = []
    for arm_x, reward in ((np.asarray(X2), 1.0), (np.asarray(X3), 0.0)):
        a = np.eye(5) + np.outer(arm_x, arm_x)
        theta = np.linalg.solve(a, reward * arm_x)
        bounds.append(theta @ x[0] + ALPHA * np.sqrt(x[0] @ np.linalg.solve(a, x[0])))
    ucb = choose(ContextualConfig(arms=list(ARMS), policy="linucb", alpha=ALPHA), board, x, "r")
    # the wide bound of the arm never shown this context wins (with alpha 0.1, the clicked one)
    assert int(np.argmax(bounds)) == 1
    assert (ucb.arm, ucb.propensity) == ("trending", 1.0)
    thompson = ContextualConfig(arms=list(ARMS))
    draws = [choose(thompson, board, x, f"req-{n}") for n in range(40)]
    again = [choose(thompson, board, x, f"req-{n}") for n in range(40)]
    assert [(d.arm, d.propensity) for d in draws] == [(d.arm, d.propensity) for d in again]


def test_attributions_reach_only_the_bandit_of_the_lists_placement(tmp_path: Any) -> None:
    """A pipeline-wide bandit and two placements' own bandits with the same arms and width: each
    attributed click credits the bandit whose list it was (by the list's placement), by hand."""
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        boards = ContextualBoards(store, SETTINGS.kinds())
        config = ContextualConfig(arms=list(ARMS))
        wide, home, cart = (boards.board(config, 5, p) for p in (None, "home", "cart"))
        assert len({wide.model, home.model, cart.model}) == 3  # three states in the store
        rows = [  # (placement, arm, context)
            ("home", "trending", X1),
            ("home", "pipeline", X2),
            ("cart", "pipeline", X3),
            (None, "trending", X2),
            ("footer", "pipeline", X1),  # a placement without its own bandit: the wide one's
        ]
        frame = pd.DataFrame(
            {
                "event_type": ["click"] * len(rows),
                "placement": [p for p, _, _ in rows],
                "arm": [a for _, a, _ in rows],
                "arm_context": [json.dumps(list(x)) for _, _, x in rows],
            }
        )
        boards.attributed(frame)
        x1, x2, x3 = (np.asarray(x) for x in (X1, X2, X3))
        zero = np.zeros(5)
        want = {  # b per arm (pipeline, trending) and board
            "wide": [x1, x2],
            "home": [x2, x1],
            "cart": [x3, zero],
        }
        for name, board in (("wide", wide), ("home", home), ("cart", cart)):
            b = np.zeros((2, 5))
            for _, arm, cell, value in board.cells():
                if cell >= 25:
                    b[ARMS.index(arm), cell - 25] += value
            np.testing.assert_allclose(b, want[name], err_msg=name)
    finally:
        store.close()
