"""Over HTTP a number is a JSON number: ``"value": "5"`` is refused naming the field and the
string (a form field passed on as text is a client's bug that a lenient reading would hide),
for a single event, in a batch beside valid neighbours that are stored, and on the column-wise
path of a larger batch alike. A file's cells are text, so an import still reads "5" as 5."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from recsmith.cli.app import app
from recsmith.store.open import open_store
from recsmith.store.sqlite import SQLiteStore

Headers = dict[str, dict[str, str]]
VALUE = "must be a number, got the string '5'"
POSITION = "must be a whole number (1 = first shown), got the string '3'"


@pytest.mark.parametrize("size", [3, 40])  # the per-record path, and the column checks
def test_numbers_sent_as_strings_are_refused_and_neighbours_stored(
    client: TestClient, store: SQLiteStore, keys: Headers, make_event: Any, size: int
) -> None:
    batch = [make_event(item_id=f"i{n}", event_type="rating", value=n % 5) for n in range(size)]
    batch[1]["value"] = "5"
    batch[2] |= {"recommendation_id": "r1", "position": "3"}
    response = client.post("/v1/events", json=batch, headers=keys["ingest"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["accepted"] == size - 2
    assert body["rejected"] == [
        {"index": 1, "errors": [{"field": "value", "reason": VALUE}]},
        {"index": 2, "errors": [{"field": "position", "reason": POSITION}]},
    ]
    assert store.count_events() == size - 2


@pytest.mark.parametrize("size", [3, 40])
def test_a_long_string_is_quoted_by_its_first_40_characters(
    client: TestClient, keys: Headers, make_event: Any, size: int
) -> None:
    """The reason echoes the string sent, so a megabyte sent as a value would come back in the
    answer (and key the dead-letter counts): only its start is quoted, marked as cut."""
    batch = [make_event(item_id=f"i{n}", event_type="rating", value=1) for n in range(size)]
    batch[0]["value"] = "7" * 40  # exactly 40: quoted whole
    batch[1]["value"] = "12345678" * 125_000  # 1 MB
    response = client.post("/v1/events", json=batch, headers=keys["ingest"])
    assert response.status_code == 200, response.text
    reasons = [r["errors"][0]["reason"] for r in response.json()["rejected"]]
    assert reasons == [
        f"must be a number, got the string '{'7' * 40}'",
        f"must be a number, got the string '{'12345678' * 5}…'",
    ]
    assert len(response.content) < 5_000


@pytest.mark.parametrize("size", [3, 40])
def test_an_empty_string_is_no_value_as_a_form_sends_it(
    client: TestClient, store: SQLiteStore, keys: Headers, make_event: Any, size: int
) -> None:
    """A form serialiser sends "" for an empty field: read as absent, not refused as text."""
    batch = [make_event(item_id=f"i{n}", event_type="view") for n in range(size)]
    batch[0]["value"] = ""
    batch[1]["value"] = " "
    batch[2] |= {"value": "", "position": ""}
    response = client.post("/v1/events", json=batch, headers=keys["ingest"])
    assert response.status_code == 200, response.text
    assert response.json() == {**response.json(), "accepted": size, "rejected": []}
    stored = pd.concat(list(store.scan()))
    assert len(stored) == size and stored["value"].isna().all()


def test_a_number_as_a_number_is_taken(
    client: TestClient, store: SQLiteStore, keys: Headers, make_event: Any
) -> None:
    event = make_event(event_type="rating", value=5)
    response = client.post("/v1/events", json=[event], headers=keys["ingest"])
    assert response.json()["accepted"] == 1, response.text
    assert store.scan().__next__()["value"].tolist() == [5.0]


def test_an_import_still_reads_numbers_from_text(tmp_path: Path) -> None:
    data = tmp_path / "events.jsonl"
    data.write_text(
        '{"user_id": "u1", "item_id": "i1", "event_type": "rating", "value": "5", '
        '"timestamp": "2026-01-01T00:00:00Z"}\n'
    )
    url = f"sqlite:///{tmp_path / 's.sqlite'}"
    result = CliRunner().invoke(app, ["import", str(data), "--store", url])
    assert result.exit_code == 0, result.output
    store = open_store(url)
    try:
        assert next(store.scan())["value"].tolist() == [5.0]
    finally:
        store.close()
