"""Thompson allocation on a real server (SQLite store, the release registry): during burn-in the
weights are logged as each decision's assignment propensity; clicks attributed to one variant's
lists reach the shared counts under that variant's arm; traffic then moves to it, each decision
logging the share it was drawn with (checked against P(Beta above Beta) by integration); the
report says the traffic was adaptive and answers with off-policy estimates."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient
from scipy import integrate, stats

from recsmith.bundle import ModelBundle
from recsmith.config import EventSettings, Settings
from recsmith.experiments.adaptive import BANK_DRAWS, arm_key
from recsmith.experiments.registry import ExperimentRegistry
from recsmith.experiments.report import experiment_report, text_lines
from recsmith.experiments.spec import Experiment, Variant
from recsmith.features.interactions import Interactions
from recsmith.governance.releases import ModelRegistry
from recsmith.models.registry import create
from recsmith.serving import create_api_key, create_app
from recsmith.store.sqlite import SQLiteStore
from recsmith.testing.recommender import checkerboard_events

K = 5
FLOOR = 0.1


def _p_above(a: tuple[float, float], b: tuple[float, float]) -> float:
    value, _ = integrate.quad(lambda x: stats.beta.pdf(x, *a) * stats.beta.cdf(x, *b), 0, 1)
    return float(value)


def test_thompson_allocation_moves_traffic_to_the_clicked_variant(tmp_path: Path) -> None:
    data = Interactions.from_events(checkerboard_events(200), EventSettings().weights)
    models = ModelRegistry(tmp_path / "registry")
    versions = {}
    for name in ("popular", "itemknn"):
        ModelBundle.train(data, create(name)).save(tmp_path / name)
        versions[name] = models.publish(tmp_path / name)
    models.deploy(versions["popular"])
    store = SQLiteStore(tmp_path / "s.sqlite")
    _, secret = create_api_key(store, "t", ["read", "ingest"])
    auth = {"Authorization": f"Bearer {secret}"}
    settings = Settings(
        store={"url": f"sqlite:///{tmp_path / 's.sqlite'}"},
        serving={"registry": models.root, "reload_interval_s": 5.0},
    )
    exp = Experiment(
        "ts1",
        (
            Variant("control", versions["popular"], 50),
            Variant("treatment", versions["itemknn"], 50),
        ),
        salt="ts1:salt",
        allocation="thompson",
        min_share=FLOOR,
        burn_in=100,  # impressions: 20 lists of 5 per variant
    )
    with TestClient(create_app(settings)) as client:
        ExperimentRegistry(models.root).start(exp)

        def ask(n: int) -> list[dict]:
            out = []
            for i in range(n):
                r = client.get(f"/v1/users/u{i % 150:03d}/recommendations?k={K}", headers=auth)
                assert r.status_code == 200, r.text
                out.append(r.json())
            return out

        deadline = time.monotonic() + 3
        while ask(1)[0]["experiment"] != "ts1":
            assert time.monotonic() < deadline, "experiment picked up"
        burn = ask(80)
        # users click the first item of treatment lists only
        clicks = [
            {
                "event_id": f"c-{b['recommendation_id']}",
                "user_id": b["user_id"],
                "item_id": b["items"][0]["item_id"],
                "event_type": "click",
                "recommendation_id": b["recommendation_id"],
            }
            for b in burn
            if b["variant"] == "treatment"
        ]
        for start in range(0, len(clicks), 40):
            answered = client.post("/v1/events", json=clicks[start : start + 40], headers=auth)
            assert answered.status_code == 200, answered.text
        # the shared counts, read back from the store by the board's sync (every second)
        keys = {v: arm_key(exp, v) for v in ("control", "treatment")}
        n = {v: sum(b["variant"] == v for b in burn) for v in keys}
        deadline = time.monotonic() + 5
        while True:
            arms = store.arm_counts(0)
            got = dict(zip(arms.arms.tolist(), arms.clicks.tolist(), strict=True))
            if got.get(keys["treatment"]) == len(clicks) and min(n.values()) * K >= 100:
                break
            assert time.monotonic() < deadline, f"counts synced: {got}"
            time.sleep(0.1)
        shown = dict(zip(arms.arms.tolist(), arms.shown.tolist(), strict=True))
        assert shown[keys["control"]] >= n["control"] * K  # later asks count too
        assert got.get(keys["control"], 0) == 0
        time.sleep(1.2)  # every worker's snapshot holds these counts
        after = ask(200)
        client.app.state.runtime.decisions.flush()  # type: ignore[attr-defined]

    log = store.scan_decisions().drop_duplicates("recommendation_id").set_index("recommendation_id")
    chance = log["assignment_propensity"]
    # the first 20 lists (100 impressions in all) cannot have ended either variant's burn-in
    assert np.allclose(chance[[b["recommendation_id"] for b in burn[:20]]], 0.5)
    # after: the share is the floor plus P(treatment's Beta above control's), by integration of
    # the posteriors of the counts when the 200 asks began (control's lists were never clicked)
    t, c = shown[keys["treatment"]], shown[keys["control"]]
    p = _p_above((1 + len(clicks), 1 + t - len(clicks)), (1, 1 + c))
    want = FLOOR + (1 - 2 * FLOOR) * p
    treated = [b for b in after if b["variant"] == "treatment"]
    logged = chance[[b["recommendation_id"] for b in treated]].to_numpy()
    assert np.allclose(logged, want, atol=0.03)  # P stays near 1 as impressions add up
    controls = [b["recommendation_id"] for b in after if b["variant"] == "control"]
    assert np.allclose(chance[controls], 1 - want, atol=0.03)
    arms = store.arm_counts(0)
    trials = dict(zip(arms.arms.tolist(), arms.shown.tolist(), strict=True))
    se = math.sqrt(want * (1 - want) / len(after))
    assert abs(len(treated) / len(after) - want) < 5 * se  # traffic follows the shares
    assert len(treated) / len(after) > 0.8  # …which moved: 0.5 before
    assert trials[keys["treatment"]] > trials[keys["control"]]
    assert BANK_DRAWS >= 1000

    report = experiment_report(store, exp)
    assert report.to_json()["allocation"] == "thompson"
    assert report.off_policy is not None and report.off_policy.lists == 1 + 80 + 200
    lines = "\n".join(text_lines(report))
    assert "not checked (adaptive allocation)" in lines and "traffic was adaptive" in lines
    # clicks only on treatment lists of the burn-in: control's estimate is 0
    assert report.off_policy.values["control"]["snips"][0] == 0.0
    assert report.off_policy.values["treatment"]["snips"][0] > 0.0
    store.close()
