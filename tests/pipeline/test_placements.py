"""``[placements.NAME.rerank]``: a placement's own re-ranking, through the pipeline, a catalogue
change and the HTTP API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from recsmith.config import EventSettings, Settings
from recsmith.errors import ValidationError
from recsmith.events.schema import Item
from recsmith.exploration.explorer import ExploreRequest
from recsmith.pipeline.artifact import save_pipeline, train_pipeline
from recsmith.pipeline.config import PipelineConfig, load_pipeline_config
from recsmith.pipeline.runtime import Pipeline
from recsmith.serving import create_api_key, create_app
from recsmith.store.sqlite import SQLiteStore

#: what the "no_shoes" placement filters out
RULE = {"type": "filter", "property": "category", "in": ["shoes"], "negate": True}
#: the "explored" placement's own ``[explore]``: slot 3 always shows a long-tail item
EXPLORE = {"policy": "epsilon", "epsilon": 1.0, "slots": [3], "pool": "long_tail", "max_events": 8}


@pytest.fixture(scope="module")
def placed(config: PipelineConfig, events: pd.DataFrame, items: list[Item]) -> Pipeline:
    raw = config.model_dump()
    raw["placements"] = {
        "no_shoes": {"rerank": {"rules": [RULE]}},
        "diverse": {"rerank": {"diversity": 0.9}},
        "explored": {"explore": EXPLORE},
    }
    with_placements = PipelineConfig.model_validate(raw)
    return train_pipeline(with_placements, events, dict(EventSettings().weights), items=items)


def _categories(items: list[Item], item_ids: np.ndarray) -> set[str]:
    """Every category of the listed items, from the catalogue records (not the pipeline's view)."""
    of = {it.item_id: it.categories for it in items}
    return {c for i in np.asarray(item_ids, dtype=object).ravel() for c in of[str(i)]}


def test_a_placement_applies_its_own_rules_and_nothing_else(
    placed: Pipeline, items: list[Item]
) -> None:
    users = placed.bundle.users.external_ids[:60]
    base = placed.answer(users, 10).lists.item_ids
    strict = placed.for_placement("no_shoes").answer(users, 10).lists.item_ids
    assert "shoes" in _categories(items, base)  # the filter has something to remove
    assert "shoes" not in _categories(items, strict)
    diverse = placed.for_placement("diverse").answer(users, 10).lists.item_ids
    assert any(list(d) != list(b) for d, b in zip(diverse, base, strict=True))
    # no placement, or one the file does not configure: the pipeline as it is
    for name in (None, "", "home"):
        assert placed.for_placement(name) is placed
    assert placed.explorer is None and placed.for_placement("diverse").explorer is None
    assert placed.for_placement("no_shoes").config.placements == {}


def test_a_catalogue_change_reaches_every_placement(placed: Pipeline) -> None:
    users = placed.bundle.users.external_ids[:40]
    shown = placed.for_placement("diverse").answer(users, 10).lists.item_ids
    gone = str(shown[0][0])
    changed = placed.with_catalog([Item(item_id=gone, available=False)], stamp=1)
    for name in (None, "no_shoes", "diverse"):
        lists = changed.for_placement(name).answer(users, 10).lists.item_ids
        assert gone not in {str(i) for row in lists for i in row}, name


def test_placement_keys_are_checked_when_the_file_is_read(tmp_path: Path) -> None:
    base = '[[retrieval.sources]]\nname = "pop"\nmodel = "popular"\n'
    cases = {
        "[placements.home.rerank]\ndiversty = 0.3\n": "placements.home.rerank.diversty",
        "[placements.home.rerank]\ndiversity = 3\n": "placements.home.rerank.diversity",
        '[placements."a b".rerank]\ndiversity = 0.3\n': (
            "placement name 'a b' holds ' ': a placement name is 1 to 64 letters, digits, '.', "
            "'_' or '-'"
        ),
        "[placements.email.v2.rerank]\ndiversity = 0.3\n": (  # TOML: table v2 in placement email
            """placements.email.v2: unknown key (valid: rerank, k, release, contextual, explore);"""
            """ a placement name holding '.' is quoted: [placements."email.v2"]"""
        ),
        '[placements.home.explore]\npolicy = "epsilon"\npool = "source"\nsource = "knn"\n': (
            "placements.home.explore.source 'knn' is not a retrieval source"
        ),
        '[placements.home.explore]\npolicy = "softmax"\nepsilon = 0.3\n': (
            "placements.home.explore"
        ),
    }
    for text, named in cases.items():
        path = tmp_path / "p.toml"
        path.write_text(base + text)
        with pytest.raises(ValidationError) as error:
            load_pipeline_config(path)
        assert named in str(error.value)
    path.write_text(base + "[placements.home]\nrernk = 1\n")  # a misspelt key is no table
    with pytest.raises(ValidationError) as error:
        load_pipeline_config(path)
    assert "quoted" not in str(error.value)


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("email.v2", True),
        ("p" * 64, True),
        ("a_b-C.9", True),
        ("p" * 65, False),
        ("a b", False),
        ("home\n", False),
        ("", False),
    ],
)
def test_a_pipeline_file_takes_the_placement_names_requests_take(
    tmp_path: Path, name: str, valid: bool
) -> None:
    """A request's ``?placement=`` takes 1 to 64 letters, digits, '.', '_' or '-' (README); a
    pipeline file must take exactly those, or it holds placements no request can name."""
    path = tmp_path / "p.toml"
    quoted = name.replace("\n", "\\n")  # a TOML basic string
    path.write_text(
        '[[retrieval.sources]]\nname = "pop"\nmodel = "popular"\n'
        f'[placements."{quoted}".rerank]\ndiversity = 0.3\n'
    )
    if valid:
        assert list(load_pipeline_config(path).placements) == [name]
    else:
        with pytest.raises(ValidationError, match="placement name") as error:
            load_pipeline_config(path)
        why = {"p" * 65: "has 65 characters", "a b": "holds ' '", "home\n": "holds '\\n'"}
        assert f"placement name {name!r} {why.get(name, 'is empty')}: " in str(error.value)


@pytest.fixture
def client(placed: Pipeline, tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    save_pipeline(placed, tmp_path / "pipeline")
    store = SQLiteStore(tmp_path / "s.sqlite")
    _, secret = create_api_key(store, "t", ["read"])
    store.close()
    settings = Settings(
        store={"url": f"sqlite:///{tmp_path / 's.sqlite'}"},
        serving={"model_dir": tmp_path / "pipeline"},
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client, {"Authorization": f"Bearer {secret}"}


def test_the_route_serves_each_placement_its_own_list(
    placed: Pipeline, items: list[Item], client: tuple[TestClient, dict[str, str]]
) -> None:
    http, headers = client
    users = [str(u) for u in placed.bundle.users.external_ids[:30]]
    found = {}
    for placement in (
        "",
        "no_shoes",
        "",
        "no_shoes",
    ):  # twice: the response cache must not mix them
        query = f"?k=10&placement={placement}" if placement else "?k=10"
        for user in users:
            answer = http.get(f"/v1/users/{user}/recommendations{query}", headers=headers)
            assert answer.status_code == 200
            found.setdefault(placement, {})[user] = [i["item_id"] for i in answer.json()["items"]]
    default = np.array([found[""][u] for u in users], dtype=object)
    strict = np.array([found["no_shoes"][u] for u in users], dtype=object)
    assert "shoes" in _categories(items, default)
    assert "shoes" not in _categories(items, strict)


def test_a_placement_rule_the_catalogue_cannot_meet_is_refused_before_fitting(
    config: PipelineConfig, events: pd.DataFrame, items: list[Item]
) -> None:
    raw = config.model_dump()
    raw["placements"] = {
        "home": {"rerank": {"rules": [{"type": "filter", "property": "colour", "equals": "red"}]}}
    }
    with pytest.raises(ValidationError, match="colour"):
        train_pipeline(
            PipelineConfig.model_validate(raw), events, dict(EventSettings().weights), items=items
        )


def test_a_placement_explores_with_its_own_policy(
    placed: Pipeline, config: PipelineConfig, events: pd.DataFrame, items: list[Item]
) -> None:
    """``[placements.explored.explore]`` serves, for the same request ids, exactly the lists
    and propensities of a pipeline whose ``[explore]`` is that policy; other placements and the
    pipeline itself stay deterministic."""
    raw = config.model_dump()
    raw["explore"] = EXPLORE
    everywhere = train_pipeline(
        PipelineConfig.model_validate(raw), events, dict(EventSettings().weights), items=items
    )
    users = placed.bundle.users.external_ids[:50]
    ids = [f"req-{n}" for n in range(len(users))]
    got = placed.for_placement("explored").answer(users, 10, explore=ExploreRequest(ids))
    want = everywhere.answer(users, 10, explore=ExploreRequest(ids))
    np.testing.assert_array_equal(got.lists.item_ids, want.lists.item_ids)
    assert got.propensities == want.propensities
    # slot 3 shows a long-tail item (popularity score at most 8), with probability 1/|pool|
    scores = placed.bundle.popular.item_scores_
    score = dict(zip(placed.bundle.items.external_ids, scores, strict=False))
    assert all(score[str(row[2])] <= 8 for row in got.lists.item_ids)
    assert all(0 < p[2] < 1 and p[:2] == [1.0, 1.0] for p in got.propensities)
    plain = placed.answer(users, 10, explore=ExploreRequest(ids))
    assert plain.propensities == []  # deterministic: no propensities
    assert any(
        list(a) != list(b) for a, b in zip(plain.lists.item_ids, got.lists.item_ids, strict=True)
    )


def test_the_route_logs_a_placements_own_exploration(
    placed: Pipeline, client: tuple[TestClient, dict[str, str]]
) -> None:
    """Over HTTP, the explored placement's lists carry their propensities into the decision log,
    a repeated request included (not a cached list); the pipeline's own list is deterministic."""
    http, headers = client
    runtime = http.app.state.runtime  # type: ignore[attr-defined]
    user = str(placed.bundle.users.external_ids[0])
    logged = {}
    for placement in ("explored", "explored", ""):
        query = f"?k=10&placement={placement}" if placement else "?k=10"
        body = http.get(f"/v1/users/{user}/recommendations{query}", headers=headers).json()
        rid = body["recommendation_id"]
        found = runtime.decisions.pending(rid) or runtime.store.get_decision(rid)
        logged.setdefault(placement, []).append(found)
    for d in logged["explored"]:
        assert d.placement == "explored"
        assert d.propensities is not None and d.propensities[:2] == (1.0, 1.0)
        assert 0 < d.propensities[2] < 1
    (plain,) = logged[""]
    assert set(plain.propensities) == {1.0}
