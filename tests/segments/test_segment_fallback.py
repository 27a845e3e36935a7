"""The segment tier end to end: a pipeline trained with profiles answers a user who has a profile
and no events with their segments' popularity (the hand-worked lists of
``test_segment_popularity``), saved and loaded releases keep it, and over HTTP a profile written
after training is read from the store for that user."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from test_segment_popularity import EVENTS, PROFILES

from recsmith.config import EventSettings, Settings
from recsmith.events.schema import User
from recsmith.events.validate import validate_events
from recsmith.governance.keys import create_api_key
from recsmith.pipeline.artifact import load_pipeline, save_pipeline, train_pipeline
from recsmith.pipeline.config import PipelineConfig
from recsmith.pipeline.runtime import Pipeline
from recsmith.serving import create_app
from recsmith.store.sqlite import SQLiteStore

FEMALE = ["i0", "i1", "i2", "i3"]  # (c_F + 2g) / 4: 0.75, 0.625, 0.375, 0.125
MALE = ["i1", "i3", "i0", "i2"]
GLOBAL = ["i1", "i0", "i2", "i3"]


def train(enabled: bool = True) -> Pipeline:
    records = [
        {
            "event_id": f"e{n}",
            "user_id": u,
            "item_id": i,
            "event_type": "view",
            "timestamp": 1.7e9 + n,
        }
        for n, (u, i) in enumerate(EVENTS)
    ]
    frame, _ = validate_events(records, EventSettings())
    config = PipelineConfig.model_validate(
        {
            "retrieval": {"sources": [{"name": "knn", "model": "itemknn", "quota": 10}]},
            "ranking": {"enabled": False},
            "segments": {"enabled": enabled, "shrinkage": 2.0},
        }
    )
    users = [User(user_id=u, properties=p) for u, p in PROFILES.items()]
    return train_pipeline(config, frame, dict(EventSettings().weights), users=users)


@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    return train()


def listed(pipe: Pipeline, users: list[str], **kw: object) -> tuple[list[list[str]], list[str]]:
    answer = pipe.answer(users, 4, **kw)  # type: ignore[arg-type]
    return [ids.tolist() for ids in answer.lists.item_ids], answer.tiers


def test_a_profiled_user_without_events_gets_the_segment_tier(pipeline: Pipeline) -> None:
    lists, tiers = listed(
        pipeline, ["new_f", "nobody", "late"], profiles=[None, None, {"gender": "M"}]
    )
    assert tiers == ["segment", "popular", "segment"]
    assert lists == [FEMALE, GLOBAL, MALE]
    assert pipeline.manifest["segments"]["properties"] == ["gender", "plan"]
    # a known user's list comes from the sources, tier personalised, whatever the profile
    assert listed(pipeline, ["a"])[1] == ["personalised"]
    assert pipeline.needs_profile("late") and not pipeline.needs_profile("new_f")
    assert not pipeline.needs_profile("a")  # known to the models: no read


def test_a_saved_release_keeps_its_segments(pipeline: Pipeline, tmp_path: Path) -> None:
    save_pipeline(pipeline, tmp_path / "release")
    loaded = load_pipeline(tmp_path / "release")
    assert listed(loaded, ["new_f", "nobody"]) == ([FEMALE, GLOBAL], ["segment", "popular"])


def test_turned_off_it_is_global_popularity() -> None:
    pipe = train(enabled=False)
    assert listed(pipe, ["new_f"]) == ([GLOBAL], ["popular"])
    assert not pipe.needs_profile("late")


def test_over_http_a_profile_written_after_training_is_read(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    store = SQLiteStore(tmp_path / "store.db")
    settings = Settings(store={"url": f"sqlite:///{tmp_path / 'store.db'}"})
    with TestClient(create_app(settings, bundle=pipeline, store=store)) as client:
        headers = {}
        for scope in ("ingest", "read"):
            headers[scope] = {"Authorization": f"Bearer {create_api_key(store, scope, [scope])[1]}"}
        url = "/v1/users/late/recommendations?k=4&exclude=i3"
        before = client.get(url, headers=headers["read"]).json()
        assert before["tier"] == "popular" and before["fallback"] == "popular"
        put = client.put(
            "/v1/users/late", json={"properties": {"gender": "M"}}, headers=headers["ingest"]
        )
        assert put.status_code == 200
        # the same request again: the profile is part of the response cache's key
        after = client.get(url, headers=headers["read"]).json()
        assert after["tier"] == "segment" and after["fallback"] == "segment"
        assert [i["item_id"] for i in after["items"]] == ["i1", "i0", "i2"]
        assert {i["reason"] for i in after["items"]} == {"popular with people like you"}
    store.close()
