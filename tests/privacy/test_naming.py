"""Which dead letters name a person (``privacy.naming``): hand-written payloads as the stores
keep them (``store.dead_letters.kept_payload``)."""

from __future__ import annotations

import json

from recsmith.privacy.naming import names_person, search_texts
from recsmith.store.dead_letters import kept_payload

NO_ERRORS = json.dumps([{"field": "event_type", "reason": "unknown event type"}])


def test_a_payload_value_names_them_and_a_longer_id_does_not() -> None:
    payload = kept_payload({"user_id": "u1", "item_id": "i9"}, 4096)
    assert names_person("u1", NO_ERRORS, payload)
    assert not names_person("u1", NO_ERRORS, kept_payload({"user_id": "u10"}, 4096))
    assert not names_person("i9x", NO_ERRORS, payload)


def test_nested_values_and_a_truncated_head_name_them() -> None:
    nested = kept_payload({"context": {"friend": ["a", "zoë"]}}, 4096)
    assert names_person("zoë", NO_ERRORS, nested)
    big = kept_payload({"user_id": "zoë", "context": {"blob": "x" * 500}}, 100)
    assert json.loads(big)["truncated"] is True
    assert names_person("zoë", NO_ERRORS, big)
    assert not names_person("zo", NO_ERRORS, big)


def test_a_reason_quoting_the_id_names_them() -> None:
    errors = json.dumps([{"field": "user_id", "reason": "'bad id' has a tab"}])
    assert names_person("bad id", errors, kept_payload({}, 4096))
    assert not names_person("bad", errors, kept_payload({}, 4096))


def test_a_search_text_is_a_substring_of_every_stored_form() -> None:
    for uid in ("u1", "zoë", 'quote"d', "back\\slash"):
        for payload in (
            kept_payload({"user_id": uid}, 4096),
            kept_payload({"user_id": uid, "pad": "y" * 300}, 60),
        ):
            assert any(form in payload for form in search_texts(uid)), (uid, payload)
            assert names_person(uid, NO_ERRORS, payload), (uid, payload)
