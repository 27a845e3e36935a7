"""The pipeline end to end: tiers, exclusions, persistence, and the ranker's place in it."""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import pandas as pd
import pydantic
import pytest

from recsmith.config import EventSettings
from recsmith.errors import ValidationError
from recsmith.events.schema import Item
from recsmith.models.ease import EASEConfig
from recsmith.models.topk import TopK
from recsmith.pipeline.artifact import load_artifact, save_pipeline, train_pipeline
from recsmith.pipeline.config import CalibrationConfig, PipelineConfig, load_pipeline_config
from recsmith.pipeline.runtime import Pipeline
from recsmith.rerank.rules import parse_rules
from recsmith.retrieval.ann import STORED_MARGIN, ANNSource, recall_at

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pipeline(config: PipelineConfig, events: pd.DataFrame, items: list[Item]) -> Pipeline:
    return train_pipeline(config, events, dict(EventSettings().weights), items=items)


def test_every_fallback_tier_is_reached(pipeline: Pipeline, events: pd.DataFrame) -> None:
    known = events["user_id"].iloc[0]
    viewed = list(events.loc[events["user_id"] == known, "item_id"].iloc[:3])
    answer = pipeline.answer([known, "visitor", "stranger"], 8, recent=[[], viewed, []])
    assert answer.tiers == ["personalised", "session", "popular"]
    assert all(len(x) == 8 for x in answer.lists.item_ids)
    assert not set(viewed) & set(answer.lists.item_ids[1])  # the session's items are not re-sold
    popular, _ = pipeline.popular_items(8)
    assert list(answer.lists.item_ids[2]) == list(popular)
    assert all(answer.sources[0]), "every personalised item names the sources that proposed it"


def test_seen_and_just_ingested_items_never_come_back(
    pipeline: Pipeline, events: pd.DataFrame
) -> None:
    user = events["user_id"].iloc[5]
    had = set(events.loc[events["user_id"] == user, "item_id"])
    first = pipeline.recommend([user], 10).item_ids[0]
    assert not had & set(first)
    after = pipeline.recommend([user], 10, extra_seen=[[first[0]]]).item_ids[0]
    assert first[0] not in after


def test_the_exclusions_hold_training_stored_and_recent_items(
    pipeline: Pipeline, events: pd.DataFrame
) -> None:
    """A known user's exclusion row is their items in the events, the stored (``extra_seen``)
    and ``recent`` ids the release knows; a visitor's, its ids alone; the recent rows hold the
    request's ``recent`` ids too (each list is looked up once and serves both): against sets
    read off the events by hand. A list per user of the wrong length is refused by name."""
    user = events["user_id"].iloc[5]
    had = set(events.loc[events["user_id"] == user, "item_id"])
    others = sorted(set(events["item_id"]) - had)
    stored, recent = [others[0], "not-an-item"], [others[1], others[2]]
    queries = pipeline.queries(
        np.asarray([user, "a-visitor"], object),
        [stored, []],
        [recent, [others[3]]],
        None,
    )
    rows = [set(pipeline.items.to_external(queries.exclude[[r]].indices)) for r in (0, 1)]
    assert rows == [had | {others[0], others[1], others[2]}, {others[3]}]
    recent_rows = [set(pipeline.items.to_external(queries.recent[[r]].indices)) for r in (0, 1)]
    assert {others[1], others[2]} <= recent_rows[0] and recent_rows[1] == {others[3]}
    kept = pipeline.queries(np.asarray([user], object), [stored], [recent], None, True)
    assert set(pipeline.items.to_external(kept.exclude[[0]].indices)) == {others[0]}
    with pytest.raises(ValueError, match="extra_seen: 1 lists for 2 users"):
        pipeline.queries(np.asarray([user, "v"], object), [stored], None, None)
    with pytest.raises(ValueError, match="recent: 3 lists for 2 users"):
        pipeline.queries(np.asarray([user, "v"], object), None, [[], [], []], None)


def test_the_ranker_is_trained_and_changes_the_order(pipeline: Pipeline) -> None:
    assert pipeline.ranker is not None and pipeline.manifest["ranker"] is True
    queries = pipeline.queries(np.asarray(["u0001", "u0002"], object), None, None, None)
    ranked = pipeline.candidates(queries, 10)
    retrieval_order = ranked.with_scores(-ranked.source_ranks.max(axis=1).astype(np.float32))
    assert not np.array_equal(ranked.items, retrieval_order.items)


def test_a_kept_ranker_states_its_held_out_gain(pipeline: Pipeline) -> None:
    report = pipeline.manifest["ranker_training"]
    ranked, fused = report["heldout_ndcg_ranker"], report["heldout_ndcg_retrieval"]
    assert report["outcome"] == "kept" and ranked > fused and report["heldout_queries"] > 0
    assert pipeline.manifest["ranker_summary"] == (
        f"ranker kept: held-out NDCG@10 {ranked:.4f} vs fused {fused:.4f} ({ranked - fused:+.4f}) "
        f"on {report['heldout_queries']:,.0f} held-out queries"
    )


def test_a_ranker_learns_from_events_without_time_order(
    config: PipelineConfig, events: pd.DataFrame, items: list[Item]
) -> None:
    timeless = events.assign(ts=events["ts"].iloc[0])
    trained = train_pipeline(config, timeless, dict(EventSettings().weights), items=items)
    report = trained.manifest["ranker_training"]
    assert "heldout_ndcg_ranker" in report  # trained and checked
    # random draws are exchangeable: all four (of the config's 0.2 share each) are used, since
    # 300 users never reach max_queries
    assert report["windows"] == 4 and 0.75 < report["label_share"] < 0.85


def test_save_and_load_answer_the_same(pipeline: Pipeline, tmp_path: Path) -> None:
    save_pipeline(pipeline, tmp_path / "p")
    loaded = load_artifact(tmp_path / "p")
    assert isinstance(loaded, Pipeline) and loaded.version == pipeline.version
    assert gc.isenabled()  # loading pauses the collector (recsmith.gc_pause), and only then
    users = ["u0001", "u0002", "nobody"]
    a = pipeline.recommend(users, 6, recent=[[], [], ["i00001"]])
    b = loaded.recommend(users, 6, recent=[[], [], ["i00001"]])
    assert [list(x) for x in a.item_ids] == [list(x) for x in b.item_ids]
    assert not list((tmp_path / "p").rglob("*.pkl"))


def test_example_pipeline_config_is_valid() -> None:
    config = load_pipeline_config(ROOT / "examples" / "pipeline.toml")
    assert config.ranking.enabled and len(config.retrieval.sources) >= 3


def test_bad_config_names_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "p.toml"
    bad.write_text('[[retrieval.sources]]\nname = "x"\nquota = 0\nmodel = "ials"\n')
    with pytest.raises(ValidationError, match="quota"):
        load_pipeline_config(bad)


@pytest.mark.parametrize(
    ("tail", "where"),
    [
        ('[[rerank.rules]]\npin = "i1"\n', "pipeline rerank.rules.0.type"),
        (
            '[placements.home]\n[[placements.home.rerank.rules]]\npin = "i1"\n',
            "pipeline: placements.home.rerank.rules.0.type",  # a model validator's: no key
        ),
    ],
)
def test_a_rule_without_its_type_names_the_types(tmp_path: Path, tail: str, where: str) -> None:
    bad = tmp_path / "p.toml"
    bad.write_text('[[retrieval.sources]]\nname = "s"\nmodel = "popular"\n' + tail)
    with pytest.raises(ValidationError) as raised:
        load_pipeline_config(bad)
    types = "filter, exclude, blocklist, boost, bury, pin, cap_per_category"
    assert str(raised.value) == f"{where}: required, one of {types}"


SOURCE = '[[retrieval.sources]]\nname = "s"\nmodel = "itemknn"\n'


@pytest.mark.parametrize(
    ("toml", "key", "says"),
    [
        (SOURCE.replace("itemknn", "eese"), "retrieval.sources.0", "unknown model 'eese'"),
        (
            SOURCE + "params = { neighbours = 5 }\n",
            "retrieval.sources.0",
            "params neighbours: unknown parameter (did you mean neighbors?)",
        ),
        (SOURCE + "tune = { neighbors = [5, 0] }\n", "retrieval.sources.0", "tune.neighbors"),
        (SOURCE.replace("itemknn", "ials") + 'use = "recent"\n', "retrieval.sources.0", "a list"),
        (SOURCE.replace('"s"', '"popular"'), "retrieval.sources.0", "pipeline's own fallback"),
        (
            '[[retrieval.sources]]\nname = "n"\nkind = "new_arrivals"\nmodel = "ease"\n',
            "retrieval.sources.0",
            "new_arrivals takes no model",
        ),
        (SOURCE + 'quota = "50"\n', "retrieval.sources.0.quota", "valid integer"),
        (SOURCE + SOURCE, "retrieval", "names must be unique (s twice)"),
        (SOURCE + '[ranking]\nenabled = "no"\n', "ranking.enabled", "valid boolean"),
        # a grid value EASE itself would refuse is named when the file is read, not mid-training
        (SOURCE + "[calibration]\nease_decay = [150]\n", "calibration.ease_decay.0", "100"),
        (SOURCE + "[calibration]\nease_lowpass = [0.3, 11]\n", "calibration.ease_lowpass.1", "10"),
        (
            SOURCE + "[calibration]\nease_autoencoder = [inf]\n",
            "calibration.ease_autoencoder.0",
            "10",
        ),
        (SOURCE + "[rerank]\nonly_available = false\n", "rerank", "never shown"),
        (
            SOURCE + '[[rerank.rules]]\ntype = "filter"\nproperty = "brand"\nin = []\n',
            "rerank.rules.0",
            "lists no values",
        ),
        (
            SOURCE + '[[rerank.rules]]\ntype = "filter"\nproperty = "x"\nequals = "a"\n'
            'negate = "yes"\n',
            "rerank.rules.0",
            "valid boolean",
        ),
    ],
)
def test_a_pipeline_file_mistake_is_named_when_the_file_is_read(
    tmp_path: Path, toml: str, key: str, says: str
) -> None:
    """Mistakes that used to train cleanly (and serve nothing from that source), pass with a
    guessed value, or fail only after the sources before them had trained."""
    bad = tmp_path / "p.toml"
    bad.write_text(toml)
    with pytest.raises(ValidationError, match="pipeline") as raised:
        load_pipeline_config(bad)
    assert raised.value.field.startswith(f"pipeline {key}") and says in raised.value.reason


CALIBRATION_KEYS = (
    "enabled, budget_seconds, min_users, share, max_users, latest_folds, ials_factors, "
    "ease_lowpass, ease_autoencoder, ease_past_top, ease_decay, ease_recency, decayed_source, "
    "fused_weights, fused_forward, fused_drop, sitting_bar, pooled_prefer, ranker_latest, "
    "sequential"
)


@pytest.mark.parametrize(
    ("toml", "says"),
    [
        # a key calibration does not have (there is no pin of a source): refused, keys listed
        (
            SOURCE + '[calibration]\nenabled = true\npin = "s"\n',
            f"pipeline calibration.pin: unknown key (valid: {CALIBRATION_KEYS})",
        ),
        (
            SOURCE + "[calibration]\nbudget_second = 5\n",
            "pipeline calibration.budget_second: unknown key (did you mean budget_seconds?)",
        ),
        (
            SOURCE + "quotas = 3\n",
            "pipeline retrieval.sources.0.quotas: unknown key (did you mean quota?)",
        ),
        (SOURCE + "[rankng]\n", "pipeline rankng: unknown section (did you mean ranking?)"),
        (
            SOURCE + '[[rerank.rules]]\ntype = "pin"\nitem = "i1"\nposition = 1\ncolour = 3\n',
            "pipeline rerank.rules.0.pin.colour: unknown key "
            "(valid: start, end, type, item, position)",
        ),
        (
            SOURCE + "[placements.home]\nrerank = { diversty = 0.3 }\n",
            "pipeline: placements.home.rerank.diversty: unknown key (did you mean diversity?)",
        ),
        (
            SOURCE + "[placements.home]\nkk = 5\n",
            "pipeline placements.home.kk: unknown key (did you mean k?)",
        ),
        # a key is suggested as it is written (``in``), not as the field is named (``in_``)
        (
            SOURCE + '[[rerank.rules]]\ntype = "filter"\nproperty = "category"\ninn = ["a"]\n',
            "pipeline rerank.rules.0.filter.inn: unknown key (did you mean in?)",
        ),
        # an optional section (``X | None``) is walked into as X
        (
            SOURCE + "[rerank.amortised]\nwindow_dayz = 3\n",
            "pipeline rerank.amortised.window_dayz: unknown key (did you mean window_days?)",
        ),
    ],
)
def test_an_unknown_key_is_refused_with_the_keys_it_could_be(
    tmp_path: Path, toml: str, says: str
) -> None:
    """As recsmith.toml says it: the nearest key, else the section's keys (was pydantic's
    "Extra inputs are not permitted", which names neither)."""
    bad = tmp_path / "p.toml"
    bad.write_text(toml)
    with pytest.raises(ValidationError) as raised:
        load_pipeline_config(bad)
    assert str(raised.value) == says


@pytest.mark.parametrize(
    ("rule", "where", "says"),
    [
        ({"type": "filter", "property": "category", "in": ["SHOES"]}, "rules.0", "no available"),
        ({"type": "filter", "property": "colour", "equals": "red"}, "rules.0", "no available"),
        ({"type": "pin", "item": "no-such-item", "position": 1}, "rules.0.item", "no events"),
    ],
)
def test_a_rule_that_could_never_act_fails_training_before_any_fitting(
    config: PipelineConfig,
    events: pd.DataFrame,
    items: list[Item],
    rule: dict[str, object],
    where: str,
    says: str,
) -> None:
    bad = config.model_copy(
        update={"rerank": config.rerank.model_copy(update={"rules": parse_rules([rule])})}
    )
    with pytest.raises(ValidationError, match=says) as raised:
        train_pipeline(bad, events, dict(EventSettings().weights), items=items)
    assert raised.value.field == f"pipeline rerank.{where}"


def test_packaged_default_is_the_example_file() -> None:
    packaged = Path(__import__("recsmith.pipeline").pipeline.__file__).parent / "default.toml"
    assert packaged.read_text() == (ROOT / "examples" / "pipeline.toml").read_text()


@pytest.mark.parametrize("room", [True, False])
def test_the_ann_index_is_saved_with_the_pipeline(
    events: pd.DataFrame,
    items: list[Item],
    tmp_path: Path,
    room: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A factor source over ``ann_min_items`` retrieves through a faiss index that is written with
    the artifact and read back (not rebuilt: k-means would take seconds at 100k items), with each
    known user's list searched once (``ItemIndex.known``), and the loaded pipeline, reading those
    lists, answers exactly as the trained one, which searches each request. Lists larger than
    ``STORED_BYTES_MAX`` are not stored (no ``room``): the loaded pipeline searches, the same."""
    pytest.importorskip("faiss")
    config = PipelineConfig.model_validate(
        {
            "retrieval": {
                "ann_min_items": 10,
                "sources": [{"name": "als", "model": "ials", "quota": 30}],
            },
            "ranking": {"enabled": False},
        }
    )
    trained = train_pipeline(config, events, dict(EventSettings().weights), items=items)
    assert set(trained.indexes) == {"als"}
    if not room:
        monkeypatch.setattr("recsmith.retrieval.ann.STORED_BYTES_MAX", 8 * 30 * STORED_MARGIN)
    save_pipeline(trained, tmp_path / "p")
    assert (tmp_path / "p" / "ann" / "als.faiss").is_file()
    loaded = load_artifact(tmp_path / "p")
    assert isinstance(loaded, Pipeline) and set(loaded.indexes) == {"als"}
    known = loaded.indexes["als"].known
    assert trained.indexes["als"].known is None
    if room:
        assert known is not None
        assert known.ids.shape == (len(loaded.bundle.users), 30 + STORED_MARGIN)
    else:
        assert known is None and not (tmp_path / "p" / "ann" / "als.known").exists()
    users = list(events["user_id"].unique()[:40])
    a = trained.answer(users, 10)
    b = loaded.answer(users, 10)
    assert [list(x) for x in a.lists.item_ids] == [list(x) for x in b.lists.item_ids]
    assert [list(x) for x in a.lists.scores] == [list(x) for x in b.lists.scores]
    assert a.sources == b.sources
    # each user's proposals with their scores, past more exclusions than a stored list has room
    # for: every third user has seen their own best 80 (of 94 stored), so is searched live
    index, source = loaded.indexes["als"], loaded.sources[0]
    assert isinstance(source, ANNSource)
    at = loaded.bundle.users.to_index(np.asarray(users, dtype=object))
    own = index.search(source.user_vectors[at], 80).ids if known is None else known.ids[at, :80]
    seen = [[] if n % 3 else list(loaded.items.to_external(o[o >= 0])) for n, o in enumerate(own)]
    queries = loaded.queries(np.asarray(users, dtype=object), seen, None, None)
    searched: list[int] = []  # users the loaded source searched live (the real search, counted)
    live = ANNSource._search

    def counted(self: ANNSource, users: np.ndarray, *rest: object) -> TopK:
        searched.extend(users.tolist())
        return live(self, users, *rest)  # type: ignore[arg-type]

    want = trained.sources[0].retrieve(queries, 30)
    monkeypatch.setattr(ANNSource, "_search", counted)
    got = source.retrieve(queries, 30)
    for column in ("query", "items", "scores", "ranks"):
        np.testing.assert_array_equal(getattr(got, column), getattr(want, column))
    if room:  # every third user whose stored list is full (not all the probed cells hold)
        full = at[::3][known.ids[at[::3], -1] >= 0].tolist()
        assert full and set(full) <= set(searched)
    else:
        assert sorted(searched) == sorted(at.tolist())


def test_the_stored_lists_cap_is_over_all_ann_sources(
    events: pd.DataFrame, items: list[Item], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``STORED_BYTES_MAX`` bounds a release's lists over all its ANN sources: with room for one
    source's and a half, the first source's are stored and the second searches every request."""
    pytest.importorskip("faiss")
    sources = [{"name": n, "model": n, "quota": 30} for n in ("ials", "bpr")]
    config = PipelineConfig.model_validate(
        {"retrieval": {"ann_min_items": 10, "sources": sources}, "ranking": {"enabled": False}}
    )
    trained = train_pipeline(config, events, dict(EventSettings().weights), items=items)
    one = 8 * len(trained.bundle.users) * (30 + STORED_MARGIN)  # either source's lists
    monkeypatch.setattr("recsmith.retrieval.ann.STORED_BYTES_MAX", one * 3 // 2)
    save_pipeline(trained, tmp_path / "p")
    loaded = load_artifact(tmp_path / "p")
    assert isinstance(loaded, Pipeline)
    assert loaded.indexes["ials"].known is not None and loaded.indexes["bpr"].known is None


def test_a_sequential_source_retrieves_through_the_index_too(
    events: pd.DataFrame, items: list[Item]
) -> None:
    """SASRec scores a known user by the inner product of their encoded sequence and the item
    embeddings, so over ``ann_min_items`` it retrieves through the same index as iALS, and the
    index finds what exact scoring finds."""
    pytest.importorskip("faiss")
    pytest.importorskip("torch")
    small = {"hidden": 16, "epochs": 3, "max_len": 20, "blocks": 1, "num_threads": 1}
    config = PipelineConfig.model_validate(
        {
            "retrieval": {
                "ann_min_items": 10,
                "sources": [{"name": "seq", "model": "sasrec", "quota": 30, "params": small}],
            },
            "ranking": {"enabled": False},
        }
    )
    trained = train_pipeline(config, events, dict(EventSettings().weights), items=items)
    assert set(trained.indexes) == {"seq"}
    users, vectors = trained.models["seq"].embeddings  # type: ignore[misc]
    assert recall_at(trained.indexes["seq"], users[:50], vectors, 10) >= 0.85
    answer = trained.answer(list(events["user_id"].unique()[:5]), 10)
    assert all("seq" in row for lists in answer.sources for row in lists)


def test_a_category_request_falls_back_to_popularity_within_it(
    pipeline: Pipeline, events: pd.DataFrame
) -> None:
    """Whom nothing else can answer gets the category's own best sellers (tier "category"),
    however far down the global list they are; every tier keeps to the category and fills k."""
    table, scores = pipeline.table, pipeline.bundle.popular.item_scores_
    global_top = set(np.argsort(-scores)[:30].tolist())
    code = next(
        c
        for c in range(len(table.category_names))
        if table.category_sets[:, [c]].nnz >= 12
        and not global_top & set(np.flatnonzero(table.category_sets[:, [c]].toarray().ravel()))
    )
    name = table.category_names[code]
    members = np.flatnonzero(table.category_sets[:, [code]].toarray().ravel())
    expected = members[np.lexsort((members, -scores[members]))][:6]
    known = events["user_id"].iloc[0]
    viewed = list(events.loc[events["user_id"] == known, "item_id"].iloc[:3])
    answer = pipeline.answer(
        ["stranger", known, "visitor"], 6, recent=[[], [], viewed], categories=[name]
    )
    assert answer.tiers == ["category", "personalised", "session"]
    assert list(answer.lists.item_ids[0]) == list(pipeline.items.to_external(expected))
    assert answer.sources[0] == [["category_popular"]] * 6
    for ids in answer.lists.item_ids:
        assert len(ids) == 6
        assert set(pipeline.items.to_index(list(ids)).tolist()) <= set(members.tolist())


@pytest.mark.parametrize(
    ("key", "param"),
    [
        ("ease_lowpass", "lowpass"),
        ("ease_autoencoder", "autoencoder"),
        ("ease_decay", "decay"),
        ("ease_recency", "recency"),
    ],
)
def test_every_value_calibration_accepts_for_ease_ease_accepts(key: str, param: str) -> None:
    """The grid lists' caps are EASE's own: the largest value one list takes fits EASE, and the
    next float above it is refused by both (a list wider than EASE crashed calibration)."""
    top = EASEConfig.model_fields[param].metadata
    cap = next(m.le for m in top if getattr(m, "le", None) is not None)
    CalibrationConfig.model_validate({key: [cap]})
    EASEConfig.model_validate({param: cap})
    above = float(np.nextafter(cap, np.inf))
    with pytest.raises(pydantic.ValidationError):
        CalibrationConfig.model_validate({key: [above]})
    with pytest.raises(pydantic.ValidationError):
        EASEConfig.model_validate({param: above})
