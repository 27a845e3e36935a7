"""``[contextual] ranker_features = true`` behind a live server on SQLite: the ranker's device,
weekday and user-events columns join the bandit's context. Shoppers on mobile click only
trending lists and shoppers on desktop only the pipeline's, with everything else about the
requests alike, so only the device can tell them apart: the bandit learns each device its list,
and each logged context is the one built here by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from recsmith.decisions.record import Decision
from recsmith.events.schema import Item
from recsmith.exploration.linear import context_vector
from recsmith.pipeline.runtime import Pipeline
from recsmith.testing.live_app import click_first_items, logged, serve, two_source_pipeline

K, HOUR, ROUNDS, PER_ROUND = 4, 12, 12, 16
ARMS = ["pipeline", "trending"]
LIKES = {"mobile": "trending", "desktop": "pipeline"}
#: the device one-hot's column per device: other, mobile, desktop, tablet, app (written out here,
#: not read from the ranker's table)
COLUMN = {"mobile": 1, "desktop": 2}


@pytest.fixture(scope="module")
def pipeline(simulated: tuple[pd.DataFrame, list[Item]]) -> Pipeline:
    events, items = simulated
    return two_source_pipeline(events, items, {"arms": ARMS, "ranker_features": True})


def by_hand(device: str | None, d: Decision, events: int) -> np.ndarray:
    """The context of a known user's request at HOUR with no stored history: the request's five
    columns, the device one-hot, the weekday of the list's own time on the circle (Monday 0),
    log(1 + the user's training events)."""
    base = context_vector(np.array([0]), np.array([True]), np.array([HOUR]), np.array([-1]), 0)
    onehot = np.zeros(5)
    if device is not None:
        onehot[COLUMN[device]] = 1.0
    angle = 2 * np.pi * d.served_at.weekday() / 7
    return np.concatenate([base[0], onehot, [np.sin(angle), np.cos(angle), np.log1p(events)]])


def one_round(client: TestClient, auth: dict[str, str], r: int) -> list[tuple[str, Decision]]:
    out: list[tuple[str, Decision]] = []
    clicks: list[tuple[str, Decision]] = []
    for device, liked in LIKES.items():
        for n in range(PER_ROUND):
            who = f"{device}-{r}-{n}"  # a new user each time: no training events
            query = f"k={K}&hour={HOUR}&device={device}"
            body = client.get(f"/v1/users/{who}/recommendations?{query}", headers=auth).json()
            d = logged(client, body["recommendation_id"])
            out.append((device, d))
            if d.arm == liked:
                clicks.append((who, d))
    click_first_items(client, auth, clicks)
    return out


@pytest.mark.usefixtures("seeded_recommendation_ids")
def test_the_device_the_ranker_sees_teaches_the_bandit(pipeline: Pipeline, tmp_path: Path) -> None:
    client, auth = serve(pipeline, f"sqlite:///{tmp_path / 'store.db'}")
    with client:
        rounds = [one_round(client, auth, r) for r in range(ROUNDS)]
        # a user with training events: the last column is log(1 + them), > 0
        trained = str(pipeline.bundle.users.external_ids[0])
        body = client.get(f"/v1/users/{trained}/recommendations?k={K}", headers=auth).json()
        veteran = logged(client, body["recommendation_id"])
    # 48 late lists per device; without the device in the context both devices look the same
    # and each list is right with probability 1/2 (sd of the share 0.072): 0.9 is 5.5 sd above
    late = [pair for r in rounds[-3:] for pair in r]
    for device, liked in LIKES.items():
        right = [d.arm == liked for dev, d in late if dev == device]
        assert np.mean(right) > 0.9, (device, np.mean(right))
    for device, d in (pair for r in rounds for pair in r):
        np.testing.assert_allclose(d.arm_context, by_hand(device, d, 0), atol=1e-12)
    assert veteran.arm_context is not None and veteran.arm_context[-1] > 0
    assert sum(veteran.arm_context[5:10]) == 0  # no device asked: no device column set
