"""Placements with their own contextual bandits (``[placements.NAME.contextual]``) behind a live
server on SQLite: shoppers on ``home`` click only trending lists and shoppers on ``cart`` only
the pipeline's, with the same context everywhere. Each placement's bandit learns its own arm
from its own rounds (the two have the same arms, so only their separation can tell them apart),
the decision log holds each list's arm, propensity and context, requests without a placement use
the pipeline-wide ``[contextual]``, and a restarted server starts from each stored state."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from recsmith.decisions.record import Decision
from recsmith.events.schema import Item
from recsmith.exploration.linear import context_vector
from recsmith.pipeline.runtime import Pipeline
from recsmith.testing.live_app import click_first_items, logged, serve, two_source_pipeline

K, HOUR, ROUNDS, PER_ROUND, WIDE = 4, 12, 12, 16, 4
ARMS = ["pipeline", "trending"]
LIKES = {"home": "trending", "cart": "pipeline"}  # the arm whose lists each placement clicks


@pytest.fixture(scope="module")
def pipeline(simulated: tuple[pd.DataFrame, list[Item]]) -> Pipeline:
    events, items = simulated
    rest_of_site = {"arms": ["pipeline", "knn"]}
    placements = {p: {"contextual": {"arms": ARMS}} for p in LIKES}
    return two_source_pipeline(events, items, rest_of_site, placements=placements)


def one_round(client: TestClient, auth: dict[str, str], r: int) -> list[Decision]:
    """PER_ROUND new known users ask on each placement and WIDE on none; a list is clicked (its
    first item, explicitly attributed) when its arm is the one its placement likes."""
    out: list[Decision] = []
    clicks: list[tuple[str, Decision]] = []
    for placement in [*LIKES, None]:
        for n in range(PER_ROUND if placement else WIDE):
            who = f"{placement}-{r}-{n}"
            where = f"&placement={placement}" if placement else ""
            query = f"k={K}&hour={HOUR}{where}"
            body = client.get(f"/v1/users/{who}/recommendations?{query}", headers=auth).json()
            d = logged(client, body["recommendation_id"])
            out.append(d)
            if placement and d.arm == LIKES[placement]:
                clicks.append((who, d))
    click_first_items(client, auth, clicks)
    return out


@pytest.mark.usefixtures("seeded_recommendation_ids")
def test_each_placement_learns_its_own_arm_and_survives_a_restart(
    pipeline: Pipeline, tmp_path: Any
) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    client, auth = serve(pipeline, url)
    with client:
        rounds = [one_round(client, auth, r) for r in range(ROUNDS)]
        runtime = client.app.state.runtime  # type: ignore[attr-defined]
        boards = {b.placement: b for b in runtime.contextual.all()}
    assert set(boards) == {"home", "cart", None}
    # hand-built contexts: a placement's own bandit has no placement one-hot (5 columns); the
    # pipeline-wide one has one column per placement, none set for a request without placement
    own = context_vector(np.array([0]), np.array([True]), np.array([HOUR]), np.array([-1]), 0)[0]
    wide = context_vector(np.array([0]), np.array([True]), np.array([HOUR]), np.array([-1]), 2)[0]
    every = [d for r in rounds for d in r]
    for d in every:
        assert 0 < (d.arm_propensity or 0) <= 1
        if d.placement is None:
            assert d.arm in ("pipeline", "knn")
            np.testing.assert_allclose(d.arm_context, wide)
        else:
            assert d.arm in ARMS
            np.testing.assert_allclose(d.arm_context, own)
    # the first round explores (the prior: both arms even) on both placements
    for placement in LIKES:
        first = [d.arm == "trending" for d in rounds[0] if d.placement == placement]
        assert 0.2 < np.mean(first) < 0.8
    # the late rounds: each placement serves its own liked arm. 48 late lists per placement;
    # under no learning (or one bandit shared by both) each is right with probability 1/2 (sd of
    # the share 0.072); 0.9 is 5.5 standard errors above that
    late = [d for r in rounds[-3:] for d in r]
    for placement, liked in LIKES.items():
        right = [d.arm == liked for d in late if d.placement == placement]
        assert len(right) == 3 * PER_ROUND and np.mean(right) > 0.9, (placement, np.mean(right))
    # each stored state is the hand sums of its own placement's logged rounds only:
    # A = I + Σ x xᵀ per arm shown, b = Σ x per clicked list; the wide bandit's lists were never
    # clicked (its b stays 0 although every placement click had arms it has too)
    for placement, board in boards.items():
        arms = list(board.arms)
        dim = len(own) if placement else len(wide)
        want_a = np.broadcast_to(np.eye(dim), (2, dim, dim)).copy()
        want_b = np.zeros((2, dim))
        for d in every:
            if d.placement != placement:
                continue
            x = np.asarray(d.arm_context)
            want_a[arms.index(d.arm or "")] += np.outer(x, x)
            if placement and d.arm == LIKES[placement]:
                want_b[arms.index(d.arm)] += x
        np.testing.assert_allclose(board.state.a, want_a, rtol=1e-9, err_msg=str(placement))
        np.testing.assert_allclose(board.state.b, want_b, rtol=1e-9, err_msg=str(placement))
    # a restart: the new server's first request to a placement starts from its stored state
    client, auth = serve(pipeline, url)
    with client:
        client.get(f"/v1/users/again/recommendations?k={K}&placement=cart", headers=auth)
        (fresh,) = client.app.state.runtime.contextual.all()  # type: ignore[attr-defined]
        assert fresh.placement == "cart"
        np.testing.assert_allclose(fresh.state.b, boards["cart"].state.b, rtol=1e-9)
