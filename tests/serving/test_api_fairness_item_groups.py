"""``GET /v1/admin/fairness?item_groups=…`` refuses a bad grouping naming the parameter and the
accepted forms in words (it answered with the raw regex ``^(category|property:\\S.*)$``, which
stays published in the schema), and still takes both accepted forms."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

Headers = dict[str, dict[str, str]]


@pytest.mark.parametrize("value", ["zzz", "property:", "property: ", "brand"])
def test_a_bad_grouping_is_said_in_words(client: TestClient, keys: Headers, value: str) -> None:
    got = client.get("/v1/admin/fairness", params={"item_groups": value}, headers=keys["admin"])
    assert got.status_code == 422, got.text
    words = "category or property:NAME (a catalogue property, e.g. property:brand)"
    reason = f"{value!r} is not {words}"
    assert got.json() == {"detail": [{"field": "item_groups", "reason": reason}]}


@pytest.mark.parametrize(
    ("value", "grouping"), [("category", "category"), ("property:brand", "property:brand")]
)
def test_the_accepted_forms_still_answer(
    client: TestClient, keys: Headers, value: str, grouping: str
) -> None:
    got = client.get("/v1/admin/fairness", params={"item_groups": value}, headers=keys["admin"])
    assert got.status_code == 200, got.text
    assert got.json()["grouping"] == grouping
