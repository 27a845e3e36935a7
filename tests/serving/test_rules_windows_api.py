"""Time windows on rules, with a fixed clock: a weekend promotion switches itself on at its
``start`` and off at its ``end`` (exclusive) — live rules, a pipeline file's own rules, and a
request's rules alike."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from rules_fixtures import rules_pipeline

from recsmith.config import Settings
from recsmith.pipeline.runtime import Pipeline
from recsmith.serving import create_app
from recsmith.store.base import EventStore

K = 6
SATURDAY = "2026-12-05T00:00:00+01:00"
MONDAY = "2026-12-07T00:00:00+01:00"
#: instants around the weekend, and whether the promotion is on then
CLOCK = [
    ("2026-12-04T23:59:59+01:00", False),  # Friday, a second before
    ("2026-12-04T23:00:00+00:00", True),  # Saturday 00:00 in Paris, said in UTC: the start
    ("2026-12-06T12:00:00+01:00", True),  # Sunday noon
    ("2026-12-06T23:59:59.999999+01:00", True),
    ("2026-12-07T00:00:00+01:00", False),  # the end is exclusive
    ("2026-12-09T10:00:00+01:00", False),
]


@pytest.fixture(scope="module")
def pipe(training_records: list[dict[str, Any]]) -> Pipeline:
    return rules_pipeline(training_records)


def serve(settings: Settings, pipe: Pipeline, store: EventStore) -> TestClient:
    return TestClient(create_app(settings, bundle=pipe, store=store))  # type: ignore[arg-type]


def listed(api: TestClient, keys: dict[str, dict[str, str]], body: Any = None) -> list[str]:
    url = f"/v1/users/u1/recommendations?k={K}"
    response = (
        api.get(url, headers=keys["read"])
        if body is None
        else api.post(url, json=body, headers=keys["read"])
    )
    assert response.status_code == 200, response.text
    return [item["item_id"] for item in response.json()["items"]]


def at(api: TestClient, when: str) -> None:
    api.app.state.live_rules.clock = lambda: datetime.fromisoformat(when)  # type: ignore[attr-defined]


def promotion(item: str) -> dict[str, Any]:
    return {"type": "pin", "item": item, "position": 1, "start": SATURDAY, "end": MONDAY}


def test_a_live_weekend_promotion_switches_on_and_off_by_itself(
    settings: Settings, pipe: Pipeline, store: EventStore, keys: dict[str, dict[str, str]]
) -> None:
    with serve(settings, pipe, store) as api:
        at(api, CLOCK[0][0])
        baseline = listed(api, keys)
        promoted = baseline[4]
        body = {"rerank": {"rules": [promotion(promoted)]}}
        assert api.put("/v1/admin/rules", json=body, headers=keys["admin"]).is_success
        seen = []
        for when, on in CLOCK:
            at(api, when)
            got = listed(api, keys)
            seen.append(got[0] == promoted)
            assert got == (
                [promoted, *[i for i in baseline if i != promoted]][:K] if on else baseline
            )
        assert seen == [on for _, on in CLOCK]


def test_a_windowed_rule_in_the_pipeline_file_switches_without_live_rules(
    settings: Settings,
    store: EventStore,
    keys: dict[str, dict[str, str]],
    training_records: list[dict[str, Any]],
    pipe: Pipeline,
) -> None:
    with serve(settings, pipe, store) as api:
        at(api, CLOCK[0][0])
        baseline = listed(api, keys)
    promoted = baseline[3]
    windowed = rules_pipeline(training_records, rerank={"rules": [promotion(promoted)]})
    with serve(settings, windowed, store) as api:
        for when, on in CLOCK:
            at(api, when)
            assert (listed(api, keys)[0] == promoted) is on, when


def test_a_windowed_request_rule_applies_only_inside_its_window(
    settings: Settings, pipe: Pipeline, store: EventStore, keys: dict[str, dict[str, str]]
) -> None:
    with serve(settings, pipe, store) as api:
        at(api, CLOCK[0][0])
        baseline = listed(api, keys)
        promoted = baseline[2]
        for when, on in CLOCK:
            at(api, when)
            assert (listed(api, keys, {"rules": [promotion(promoted)]})[0] == promoted) is on
