"""A contextual bandit's context counts every item a user has in the store, also when the release
has a store cut (``recsmith.release_cut``) that lets other requests read only newer events."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from recsmith.events.schema import Item
from recsmith.exploration.linear import context_vector
from recsmith.release_cut import MANIFEST_KEY, StoreCut, store_identity
from recsmith.store.open import open_store
from recsmith.testing.live_app import logged, serve, two_source_pipeline

HOUR = 12


def test_the_arm_context_counts_every_stored_item_of_a_user_with_a_cut(
    simulated: tuple[pd.DataFrame, list[Item]], tmp_path: Path
) -> None:
    events, items = simulated
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = open_store(url)
    store.append(events)  # validated as imports are
    time.sleep(0.002)
    cut = StoreCut(store_identity(store), time.time_ns() // 1000)  # no margin: after the events
    frame = pd.concat(list(store.scan()), ignore_index=True)
    store.close()
    pipeline = two_source_pipeline(
        frame, items, {"arms": ["pipeline", "trending"], "policy": "linucb", "kpi": "click"}
    )
    cut.vouch(pipeline, frame)
    assert "received_since_us" in pipeline.manifest[MANIFEST_KEY]
    user = str(events["user_id"].iloc[0])
    had = events.loc[events["user_id"] == user, "item_id"].nunique()
    assert had > 1
    client, auth = serve(pipeline, url)
    with client:
        body = client.get(f"/v1/users/{user}/recommendations?k=4&hour={HOUR}", headers=auth)
        decision = logged(client, body.json()["recommendation_id"])
    want = context_vector(np.array([had]), np.array([True]), np.array([HOUR]), np.array([-1]), 0)
    np.testing.assert_allclose(decision.arm_context, want[0])
