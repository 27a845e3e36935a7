"""``?explain=true`` on a user's recommendations: every listed item's sources, the ranker's SHAP
values, the re-ranking stages that moved it and its anchors, checked against oracles the
explanation does not produce itself: LightGBM's own ``predict(raw_score=True)`` on the feature
values the explanation reports, the score the server listed, the training history, what a boost
can and cannot do to positions, and the default response's bytes."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from recsmith.bundle import ModelBundle
from recsmith.config import EventSettings, Settings
from recsmith.events.schema import Item
from recsmith.events.validate import validate_events
from recsmith.pipeline.artifact import train_pipeline
from recsmith.pipeline.config import PipelineConfig
from recsmith.pipeline.runtime import Pipeline
from recsmith.ranking.ltr import LambdaMARTRanker, RankerConfig
from recsmith.serving.app import create_app
from recsmith.simulate import simulate
from recsmith.store.base import EventStore
from recsmith.trees.build import compiler

Headers = dict[str, dict[str, str]]
BOOSTED = "movies"  # the category the pipeline's boost rule lifts
BOOST_RULE = f"rules[0] boost category={BOOSTED} x50"
SIM = simulate(n_users=300, n_items=80, seed=11)  # a ranker that is kept (it beats fusion)
CATEGORY = {it["item_id"]: it["categories"][0] for it in SIM.items}
#: the most active user: a long history for anchors, and ranked items to explain
USER = str(SIM.events["user_id"].value_counts().index[0])
HISTORY = set(SIM.events.loc[SIM.events["user_id"] == USER, "item_id"])


@pytest.fixture(scope="module")
def ranked() -> Pipeline:
    """A pipeline with a ranker, two item-to-item sources, diversity and a boost rule, over a
    catalogue without titles (reasons name items by id)."""
    frame, _ = validate_events(SIM.events, EventSettings())
    config = PipelineConfig.model_validate(
        {
            "retrieval": {
                "sources": [
                    {"name": "knn", "model": "itemknn", "quota": 30},
                    {"name": "recent", "model": "itemknn", "use": "recent", "quota": 10},
                    {"name": "trending", "model": "trending", "quota": 5},
                ]
            },
            "ranking": {
                "enabled": True,
                "min_queries": 10,
                "label_share": 0.2,
                # the simulator's hours are noise: with them this small ranker no longer beats
                # the fused order on its held-out queries, and is not kept
                "context_features": False,
                "params": {"n_estimators": 20, "min_child_samples": 5},
            },
            "rerank": {
                "diversity": 0.5,
                "rules": [
                    {"type": "boost", "property": "category", "equals": BOOSTED, "factor": 50.0}
                ],
            },
        }
    )
    items = [Item(item_id=i, categories=[c]) for i, c in CATEGORY.items()]
    pipeline = train_pipeline(config, frame, dict(EventSettings().weights), items=items)
    assert pipeline.ranker is not None and pipeline.ranker.fitted
    return pipeline


@pytest.fixture
def explain_client(settings: Settings, ranked: Pipeline, store: EventStore) -> Iterator[TestClient]:
    with TestClient(create_app(settings, bundle=ranked, store=store)) as client:  # type: ignore[arg-type]
        yield client


def _explained(
    client: TestClient, keys: Headers, query: str = "", user: str = USER
) -> dict[str, Any]:
    response = client.get(
        f"/v1/users/{user}/recommendations?k=10&explain=true{query}", headers=keys["admin"]
    )
    assert response.status_code == 200, response.text
    body = response.json()
    for item, why in zip(body["items"], body.pop("explanations"), strict=True):
        item["explanation"] = why  # explanations[i] explains items[i]
    return body


def test_shap_values_sum_to_lightgbm_raw_score_and_to_the_listed_score(
    explain_client: TestClient, keys: Headers, ranked: Pipeline
) -> None:
    body = _explained(explain_client, keys)
    booster = ranked.ranker.booster  # type: ignore[union-attr]
    names = booster.feature_name()
    checked = 0
    for item in body["items"]:
        ranker = item["explanation"]["ranker"]
        if ranker is None:  # a popularity fill under the ranked items
            assert item["explanation"]["sources"][-1]["name"] == "popular"
            continue
        values = {c["feature"]: c["value"] for c in ranker["contributions"]}
        assert sorted(values) == sorted(names)  # every feature, once
        row = np.asarray([[np.nan if values[n] is None else values[n] for n in names]])
        raw = float(booster.predict(row, raw_score=True)[0])
        total = ranker["expected_value"] + sum(c["contribution"] for c in ranker["contributions"])
        assert total == pytest.approx(raw, abs=1e-9)
        assert ranker["raw_score"] == pytest.approx(raw, abs=1e-9)
        assert item["score"] == pytest.approx(raw, rel=1e-5, abs=1e-6)  # what was ranked on
        effects = [abs(c["contribution"]) for c in ranker["contributions"]]
        assert effects == sorted(effects, reverse=True)
        checked += 1
    assert checked >= 5


def test_positions_follow_the_ranker_and_the_boost(
    explain_client: TestClient, keys: Headers
) -> None:
    """With diversity off for the request: the ranked positions order the ranked items by raw
    score, the last stage's position is the listed one, a boosted item is the only kind that
    moves up in the rules stage, and a boost that lifted one says so."""
    body = _explained(explain_client, keys, "&diversity=0")
    items = body["items"]
    for slot, item in enumerate(items, start=1):
        why = item["explanation"]
        assert list(why["positions"]) == ["ranked", "rules"]  # no diversity, fairness, draws
        assert why["positions"]["rules"] == slot
    ranked = [i for i in items if i["explanation"]["ranker"] is not None]
    by_score = sorted(ranked, key=lambda i: -i["explanation"]["ranker"]["raw_score"])
    by_position = sorted(ranked, key=lambda i: i["explanation"]["positions"]["ranked"])
    assert [i["item_id"] for i in by_score] == [i["item_id"] for i in by_position]
    _only_the_boost_lifts(items)


def _only_the_boost_lifts(items: list[dict[str, Any]]) -> None:
    """Rules alone (no item is unavailable, filtered or excluded here) can lift only the boosted
    category's items, and the factor of 50 lifts some of them."""
    lifted = 0
    for item in items:
        at = item["explanation"]["positions"]
        if at["rules"] < at["ranked"]:
            assert CATEGORY[item["item_id"]] == BOOSTED, item
            # the stage, then the one rule of the file, by its index and as the file says it
            assert item["explanation"]["moved_by"][:2] == ["rules", BOOST_RULE]
            lifted += 1
        elif at["rules"] == at["ranked"]:
            assert "rules" not in item["explanation"]["moved_by"]
    assert lifted >= 1


def test_a_request_rule_that_moved_an_item_is_named(
    explain_client: TestClient, keys: Headers
) -> None:
    """A pin from the request's body puts the list's last item first: it names the pin, and the
    items it passed each moved down one place, by the pin (and by nothing else, if nothing
    else moved them)."""
    plain = _explained(explain_client, keys, "&diversity=0")["items"]
    last = plain[-1]["item_id"]
    response = explain_client.post(
        f"/v1/users/{USER}/recommendations?k=10&explain=true&diversity=0",
        json={"rules": [{"type": "pin", "item": last, "position": 1}]},
        headers=keys["admin"],
    )
    assert response.status_code == 200, response.text
    body = response.json()
    items, whys = body["items"], body["explanations"]
    pin = f"request.rules[0] pin {last} at 1"
    assert items[0]["item_id"] == last and pin in whys[0]["moved_by"]
    before = {i["item_id"]: n for n, i in enumerate(plain, start=1)}
    for slot, (item, why) in enumerate(zip(items[1:], whys[1:], strict=True), start=2):
        assert slot == before[item["item_id"]] + 1  # everything else one place down
        assert pin in why["moved_by"], why
        if why["positions"]["ranked"] == before[item["item_id"]]:  # the boost did not move it
            assert why["moved_by"] == ["rules", pin], why


def test_diversity_is_a_stage_of_its_own(explain_client: TestClient, keys: Headers) -> None:
    body = _explained(explain_client, keys)
    for slot, item in enumerate(body["items"], start=1):
        at = item["explanation"]["positions"]
        assert list(at) == ["ranked", "rules", "diversity"]
        assert at["diversity"] == slot
        assert ("diversity" in item["explanation"]["moved_by"]) == (at["diversity"] != at["rules"])
    # the configured trade-off (0.5) spreads categories: some item was moved by it
    assert any("diversity" in i["explanation"]["moved_by"] for i in body["items"])
    _only_the_boost_lifts(body["items"])  # the rules stage replayed on its own


def test_sources_and_anchors_come_from_the_users_history(
    explain_client: TestClient, keys: Headers
) -> None:
    visited = next(i for i in CATEGORY if i not in HISTORY)
    body = _explained(explain_client, keys, f"&recent={visited}")
    anchored = 0
    for item in body["items"]:
        why = item["explanation"]
        assert {s["name"] for s in why["sources"]} == set(item["sources"])
        assert all(s["rank"] >= 1 for s in why["sources"])
        for anchor in why["anchors"]:
            assert anchor["item_id"] in HISTORY | {visited}
            assert anchor["source"] in item["sources"]
            assert anchor["weight"] > 0
        for source in {a["source"] for a in why["anchors"]}:
            weights = [a["weight"] for a in why["anchors"] if a["source"] == source]
            assert weights == sorted(weights, reverse=True)
        if item["reason"].startswith("because you viewed "):  # pipeline.anchors, independently
            assert item["reason"] == f"because you viewed {why['anchors'][0]['item_id']}"
            anchored += 1
    assert anchored >= 1


def test_the_default_response_carries_no_explanation(
    explain_client: TestClient, keys: Headers
) -> None:
    plain = explain_client.get(f"/v1/users/{USER}/recommendations?k=10", headers=keys["admin"])
    assert plain.status_code == 200
    assert b"explanation" not in plain.content  # not even a null
    explained = _explained(explain_client, keys)
    assert [i["item_id"] for i in explained["items"]] == [
        i["item_id"] for i in plain.json()["items"]
    ]


def test_explain_needs_the_admin_scope(explain_client: TestClient, keys: Headers) -> None:
    url = f"/v1/users/{USER}/recommendations?explain=true"
    refused = explain_client.get(url, headers=keys["read"])
    assert refused.status_code == 403
    assert "admin" in refused.json()["detail"]
    assert explain_client.get(url.replace("true", "false"), headers=keys["read"]).status_code == 200


def test_a_single_model_explains_its_rank_score_and_anchors(
    client: TestClient, keys: Headers, bundle: ModelBundle, training_records: list[dict[str, Any]]
) -> None:
    history = {e["item_id"] for e in training_records if e["user_id"] == "u3"}
    body = _explained(client, keys, user="u3")
    assert body["items"]
    for slot, item in enumerate(body["items"], start=1):
        why = item["explanation"]
        assert why["sources"] == [{"name": "itemknn", "rank": slot, "score": item["score"]}]
        assert why["ranker"] is None and why["moved_by"] == []
        assert why["positions"] == {"ranked": slot}
        assert why["anchors"], item  # item-kNN lists only items its history points to
        assert {a["item_id"] for a in why["anchors"]} <= history


def test_contributions_of_a_one_split_model_by_hand() -> None:
    """One feature, one tree of one split: the SHAP value is the row's leaf value less the
    average leaf value weighted by the training rows in each leaf (read from the tree dump)."""
    x = np.tile([[0.0], [1.0]], (20, 1))  # each query of 10 rows: five of each value
    labels = x[:, 0].copy()  # the rows with 1 are the relevant ones
    ranker = LambdaMARTRanker(
        RankerConfig(n_estimators=1, num_leaves=2, min_child_samples=5, learning_rate=1.0)
    ).fit(x, labels.astype(float), np.asarray([10, 10, 10, 10]), ["f"])
    tree = ranker.booster.dump_model()["tree_info"][0]["tree_structure"]
    left, right = tree["left_child"], tree["right_child"]
    mean = (left["leaf_value"] * left["leaf_count"] + right["leaf_value"] * right["leaf_count"]) / (
        left["leaf_count"] + right["leaf_count"]
    )
    shap = ranker.contributions(np.asarray([[0.0], [1.0]]))
    assert shap[:, 1] == pytest.approx([mean, mean])
    assert shap[:, 0] == pytest.approx([left["leaf_value"] - mean, right["leaf_value"] - mean])


def test_readiness_says_when_the_ranker_is_not_compiled(
    settings: Settings, ranked: Pipeline, store: EventStore, tmp_path, monkeypatch
) -> None:
    """A ranker loaded where no C compiler is found scores with LightGBM (the same scores) and
    readiness names it degraded; the compiled one is not."""
    if compiler() is None:
        pytest.skip("no C compiler: the ranker is not compiled here")
    assert ranked.ranker is not None
    ranked.ranker.save(tmp_path / "ranker.txt")
    fast = copy.copy(ranked)
    fast.ranker = LambdaMARTRanker.load(tmp_path / "ranker.txt", ranked.ranker.config)
    assert fast.ranker.wait_compiled(120)
    monkeypatch.delenv("CC", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no cc, no gcc
    fallback = LambdaMARTRanker.load(tmp_path / "ranker.txt", ranked.ranker.config)
    assert not fallback.wait_compiled(120)
    assert fallback.compiled is None and "no C compiler" in str(fallback.uncompiled_reason)
    slow = copy.copy(ranked)
    slow.ranker = fallback
    for served, degraded in ((fast, []), (slow, ["ranker_scoring"])):
        with TestClient(create_app(settings, bundle=served, store=store)) as client:  # type: ignore[arg-type]
            ready = client.get("/health/ready").json()
        assert ready["degraded"] == degraded
        assert ready["status"] == ("degraded" if degraded else "ok")


def test_readiness_says_the_ranker_is_compiling_until_it_is_compiled(
    settings: Settings, ranked: Pipeline, store: EventStore, keys: Headers, tmp_path, monkeypatch
) -> None:
    """The ranker is compiled in the background: until the library is loaded, LightGBM scores
    (the same scores, tests/trees) and readiness says ``ranker_compiling``; then neither. The
    compiler here is the machine's own, behind a script that waits for a go file."""
    cc = compiler()
    if cc is None:
        pytest.skip("no C compiler: the ranker is not compiled here")
    assert ranked.ranker is not None
    ranked.ranker.save(tmp_path / "ranker.txt")
    go = tmp_path / "go"
    held = tmp_path / "held-cc"
    held.write_text(f'#!/bin/sh\nwhile [ ! -e "{go}" ]; do sleep 0.05; done\nexec {cc} "$@"\n')
    held.chmod(0o755)
    monkeypatch.setenv("CC", str(held))
    monkeypatch.setenv("RECSMITH_CACHE_DIR", str(tmp_path / "cache"))  # nothing built yet
    served = copy.copy(ranked)
    served.ranker = LambdaMARTRanker.load(tmp_path / "ranker.txt", ranked.ranker.config)
    with TestClient(create_app(settings, bundle=served, store=store)) as client:  # type: ignore[arg-type]
        compiling = client.get("/health/ready").json()
        during = client.get(f"/v1/users/{USER}/recommendations?k=5", headers=keys["admin"])
        assert not served.ranker.wait_compiled(0.2)  # held back by the script
        go.touch()
        assert served.ranker.wait_compiled(120)
        after = client.get("/health/ready").json()
    assert compiling["degraded"] == ["ranker_compiling"] and compiling["status"] == "degraded"
    assert after["degraded"] == [] and after["status"] == "ok"
    assert during.status_code == 200 and len(during.json()["items"]) == 5  # LightGBM scored it
