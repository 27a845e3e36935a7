"""``[placements.NAME] k`` and ``release`` against a live server following a model registry.

Two releases of (almost) the same events: ``A`` (deployed) re-ranks as trained; ``B`` filters
category c0 out (items ``i{n}`` are in ``c{n % 3}``: an oracle independent of the code). A's
file gives the ``email`` placement a list length of 3, sends ``cart`` to release B and ``home``
to a release the registry does not have. The oracle for cart's list is B itself, deployed alone
in its own app."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from live_server import live_server
from rules_fixtures import category_of, rules_pipeline

from recsmith.config import Settings
from recsmith.governance.releases import ModelRegistry
from recsmith.pipeline.artifact import save_pipeline
from recsmith.pipeline.config import PipelineConfig, PlacementConfig
from recsmith.placements.choose import DEFAULT_K, list_length
from recsmith.serving import create_api_key, create_app
from recsmith.store.sqlite import SQLiteStore

SOURCES = {"sources": [{"name": "knn", "model": "itemknn"}]}
NO_C0 = {"rules": [{"type": "filter", "property": "category", "in": ["c0"], "negate": True}]}


def _get(base: str, key: str, query: str) -> dict[str, Any]:
    response = httpx.get(
        f"{base}/v1/users/u1/recommendations?{query}", headers={"X-API-Key": key}, timeout=10
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def _ids(body: dict[str, Any]) -> list[str]:
    return [item["item_id"] for item in body["items"]]


def test_a_placement_serves_its_own_k_and_its_own_release(
    tmp_path: Path, training_records: list[dict[str, Any]]
) -> None:
    # one event less: another data fingerprint, so another version within the same second
    b = rules_pipeline(training_records[:-1], rerank=NO_C0)
    a = rules_pipeline(
        training_records,
        placements={
            "email": {"k": 3},
            "cart": {"release": b.version},
            "home": {"release": "no-such-release", "k": 4},
        },
    )
    assert a.version != b.version
    registry = ModelRegistry(tmp_path / "registry")
    for pipe, name in ((b, "b"), (a, "a")):
        save_pipeline(pipe, tmp_path / name)
        registry.publish(tmp_path / name)
    registry.deploy(a.version)
    db = tmp_path / "s.sqlite"
    store = SQLiteStore(db)
    _, key = create_api_key(store, "reader", ["read", "ingest"])
    store.close()
    settings = Settings(store={"url": f"sqlite:///{db}"}, serving={"registry": registry.root})
    # the oracle: B's list for u1 when B is what a server deploys
    alone = Settings(store={"url": f"sqlite:///{tmp_path / 'alone.sqlite'}"})
    with TestClient(create_app(alone, bundle=b)) as oracle:
        own = SQLiteStore(tmp_path / "alone.sqlite")
        _, oracle_key = create_api_key(own, "oracle", ["read"])
        own.close()
        expected = oracle.get(
            "/v1/users/u1/recommendations?k=8", headers={"X-API-Key": oracle_key}
        ).json()
    assert expected["model_version"] == b.version and len(expected["items"]) == 8
    assert not [i for i in _ids(expected) if category_of(i) == "c0"]
    with live_server(settings, tmp_path) as server:
        plain = _get(server.base, key, "")
        assert plain["model_version"] == a.version and len(plain["items"]) == DEFAULT_K
        assert "c0" in {category_of(i) for i in _ids(plain)}  # B's filter has work to do
        email = _get(server.base, key, "placement=email")
        assert len(email["items"]) == 3 and _ids(email) == _ids(plain)[:3]
        assert len(_get(server.base, key, "placement=email&k=5")["items"]) == 5  # asked wins
        cart = _get(server.base, key, "placement=cart&k=8")
        assert cart["model_version"] == b.version and cart["degraded"] == []
        assert _ids(cart) == _ids(expected)
        home = _get(server.base, key, "placement=home")
        assert home["model_version"] == a.version and "placement_release" in home["degraded"]
        assert len(home["items"]) == 4 and _ids(home) == _ids(plain)[:4]
        # a catalogue change reaches the placement's release too, as it does the deployed one
        gone = _ids(cart)[0]
        put = httpx.put(
            f"{server.base}/v1/items/{gone}",
            json={"categories": [category_of(gone)], "available": False},
            headers={"X-API-Key": key},
            timeout=10,
        )
        assert put.status_code == 200, put.text
        deadline = time.monotonic() + 10
        while gone in _ids(_get(server.base, key, "placement=cart&k=8")):
            assert time.monotonic() < deadline, "the cart's release never saw the change"
            time.sleep(0.2)
        after = _get(server.base, key, "placement=cart&k=8")
        assert after["model_version"] == b.version
        assert _ids(after)[:7] == [i for i in _ids(expected) if i != gone]


@pytest.mark.parametrize(
    ("asked", "placement", "expected"),
    [(None, None, DEFAULT_K), (None, "email", 3), (7, "email", 7), (None, "other", DEFAULT_K)],
)
def test_list_length_is_the_request_s_then_the_placement_s_then_the_default(
    asked: int | None, placement: str | None, expected: int
) -> None:
    class Served:
        config = PipelineConfig.model_validate(
            {"retrieval": SOURCES, "placements": {"email": {"k": 3}}}
        )

    assert list_length(asked, Served(), placement) == expected
    assert list_length(asked, object(), placement) == (asked or DEFAULT_K)  # a single model


def test_a_placement_k_out_of_range_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match=r"placements\.email\.k"):
        PipelineConfig.model_validate({"retrieval": SOURCES, "placements": {"email": {"k": 0}}})
    assert PlacementConfig(k=1000).k == 1000


def test_live_rules_for_a_placement_keep_its_k_and_release() -> None:
    from recsmith.merchandising.document import parse_document

    config = PipelineConfig.model_validate(
        {"retrieval": SOURCES, "placements": {"cart": {"k": 4, "release": "v2"}}}
    )
    live = parse_document({"placements": {"cart": {"rerank": NO_C0}}})
    cart = live.overlay(config).placements["cart"]
    assert (cart.k, cart.release) == (4, "v2")
    assert cart.rerank["rules"][0].property == "category"
