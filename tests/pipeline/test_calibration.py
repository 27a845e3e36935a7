"""Calibration chooses on a validation split what the data rewards, and what it reports is what
serves: each case rebuilds the validation split by hand (every user's events lie in their own
time block, so no time cut holds enough returning users and each user's latest item is held
out), trains the shipped configuration on the rest with calibration off, serves the validation
users through the real runtime and scores them with the evaluation's metric code."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from recsmith.cli.app import app
from recsmith.config import EventSettings
from recsmith.evaluation.metrics import ndcg_at_k
from recsmith.features.interactions import Interactions
from recsmith.models.registry import create
from recsmith.pipeline.artifact import load_artifact, train_pipeline
from recsmith.pipeline.calibration import (
    Calibration,
    calibrate,
    calibration_summary,
    grouped,
)
from recsmith.pipeline.config import PipelineConfig
from recsmith.pipeline.item_attributes import ItemAttributes
from recsmith.pipeline.validation import latest_item_split, time_cut_split, validation_splits
from recsmith.sparse_rows import csr_from_pairs

WEIGHTS = EventSettings().weights
HITS = 5  # items 0..4: what everyone ends up taking in the popularity case
N_ITEMS = 300


def purchases(
    users: Sequence[int], items: Sequence[int], offsets_us: Sequence[int] | np.ndarray
) -> pd.DataFrame:
    """Purchase events of ``users`` × ``items`` (parallel), at ``offsets_us`` microseconds after
    a fixed start: the one frame every constructed data set here becomes."""
    return pd.DataFrame(
        {
            "user_id": [f"u{u:04d}" for u in users],
            "item_id": [f"i{i:04d}" for i in items],
            "ts": 1_700_000_000_000_000 + np.asarray(offsets_us, dtype=np.int64),
            "event_id": [f"e{n:06d}" for n in range(len(users))],
            "session_id": None,
            "event_type": "purchase",
            "value": np.nan,
            "context": None,
        }
    )


def frame(rows: list[tuple[int, int]]) -> pd.DataFrame:
    """(user, item) pairs in time order per user; user u's events sit in their own hour, so a
    global time cut splits almost nobody and the latest-item protocol must be used."""
    users = np.array([u for u, _ in rows])
    step = np.zeros(len(rows), np.int64)
    for n in range(1, len(rows)):
        step[n] = step[n - 1] + 1 if users[n] == users[n - 1] else 0
    items = [i for _, i in rows]
    return purchases(users, items, users * 3_600_000_000 + step * 1_000_000)


def config(
    sources: list[dict[str, object]],
    ranker: bool = False,
    latest_folds: int = 1,
    sitting_bar: bool = False,
) -> PipelineConfig:
    """Calibration on, on each user's latest item alone by default: the cases here rebuild that
    one split by hand (``test_evidence.py`` covers the pooled folds)."""
    return PipelineConfig.model_validate(
        {
            "retrieval": {"sources": sources, "recent_items": 1},
            "ranking": {"enabled": ranker, "params": {"n_estimators": 20}},
            "calibration": {
                "enabled": True,
                "latest_folds": latest_folds,
                "sitting_bar": sitting_bar,
            },
        }
    )


def served_on_validation(shipped: PipelineConfig, events: pd.DataFrame) -> tuple[float, float]:
    """(NDCG@10 of the shipped configuration served by the runtime, of plain ``popular``) on
    the validation split rebuilt here: each user's last event held out, where it is new to them."""
    last = events.groupby("user_id")["ts"].transform("max") == events["ts"]
    past, held = events[~last], events[last]
    held = held[held["user_id"].isin(past["user_id"])]
    seen = set(zip(past["user_id"], past["item_id"], strict=True))
    held = held[[(u, i) not in seen for u, i in zip(held["user_id"], held["item_id"], strict=True)]]
    off = shipped.model_copy(
        update={"calibration": shipped.calibration.model_copy(update={"enabled": False})}
    )
    pipeline = train_pipeline(off, past, WEIGHTS)
    items = pipeline.bundle.items
    targets = items.to_index(held["item_id"].to_numpy())
    # an item first seen in its holdout is unknown to every model: those users score 0 for all
    users = held["user_id"].to_numpy()[targets >= 0]
    targets = targets[targets >= 0]
    top, _, _ = pipeline.top_k(users, 10)
    truth = csr_from_pairs(len(users), len(items), np.arange(len(users)), targets)
    data = Interactions.from_events(past, WEIGHTS)
    assert data.items == items
    rows = data.users.to_index(users)
    popular = create("popular").fit(data).recommend(rows, 10, exclude=data.matrix[rows])
    return (
        float(ndcg_at_k(top.ids, truth, 10).sum() / len(held)),
        float(ndcg_at_k(popular.ids, truth, 10).sum() / len(held)),
    )


def only_scores(report: dict[str, object]) -> dict[str, float]:
    """Each configuration's NDCG@10 where the latest item is the only protocol (these cases)."""
    assert [p["protocol"] for p in report["protocols"]] == ["each user's latest item"]  # type: ignore[index, union-attr]
    return {t["name"]: t["protocols"][0]["ndcg@10"] for t in report["tried"]}  # type: ignore[index, union-attr]


def test_where_popularity_is_the_signal_the_shipped_pipeline_matches_popular() -> None:
    """Histories are random tail items; every user's latest item is a hit none of them had.
    EASE and item-kNN learn noise there, so the configured fusion (no popularity source in the
    file) loses to popularity, which calibration must add, choose, and serve."""
    events = popularity_case()
    cfg = config(
        [
            {"name": "ease", "model": "ease", "quota": 50},
            {"name": "knn", "model": "itemknn", "use": "recent", "quota": 50},
            {"name": "new", "kind": "new_arrivals", "quota": 5},  # no creation dates: silent
        ]
    )
    full = Interactions.from_events(events, WEIGHTS)
    chosen = calibrate(cfg, full, ItemAttributes.from_items([], full.items))
    report = chosen.report
    assert report["protocols"][0]["validation_users"] == 400
    scores = only_scores(report)
    assert set(scores) == {"popularity", "ease", "knn", "fused"}  # "new" proposes nothing
    assert report["chosen"] == "popularity"
    assert scores["fused"] < scores["popularity"]
    assert [s.name for s in chosen.config.retrieval.sources] == [
        "ease",
        "knn",
        "new",
        "popularity",
    ]
    assert [s.weight for s in chosen.config.retrieval.sources] == [1e-4, 1e-4, 1e-4, 1.0]
    served, popular = served_on_validation(chosen.config, events)
    assert served == pytest.approx(scores["popularity"], abs=1e-4)  # the report is what serves
    assert served >= popular - 1e-9  # the guarantee, against an independent popular model
    assert popular > scores["fused"] + 0.05
    grid = report["grid"]  # each model's sensitive parameters tried alone, the values kept here
    assert set(grid) == {
        "ease.regularization",
        "ease.recency",
        "ease.rising",
        "ease.lowpass",
        "ease.autoencoder",
        "knn.neighbors",
    }
    lam = grid["ease.regularization"]  # a line search: the file's 250's neighbours first
    assert {"as configured", "100.0", "625.0"} <= set(lam["ndcg@10"])
    # a far value only past a neighbour kept; each one left untried is said why
    assert set(lam["ndcg@10"]) | set(lam.get("skipped", {})) == {
        "as configured",
        "25.0",
        "100.0",
        "625.0",
        "2500.0",
    }
    assert set(grid["ease.rising"]["ndcg@10"]) == {"as configured", "0.5", "1.0"}
    rising = grid["ease.rising"]  # tried with the λ kept before it
    kept = rising["kept"] if rising["kept"] == "as configured" else str(rising["kept"])
    lowpass = grid["ease.lowpass"]  # tried with the rising factor kept
    assert lowpass["ndcg@10"]["as configured"] == rising["ndcg@10"][kept]
    kept = lowpass["kept"] if lowpass["kept"] == "as configured" else str(lowpass["kept"])
    autoencoder = grid["ease.autoencoder"]  # tried last, with the filter's weight kept
    assert autoencoder["ndcg@10"]["as configured"] == lowpass["ndcg@10"][kept]
    kept = autoencoder["kept"] if autoencoder["kept"] == "as configured" else "1.0"
    assert autoencoder["ndcg@10"][kept] == [scores["ease"]]  # what it kept is what ease is
    assert grid["knn.neighbors"]["param"] == "neighbors" and set(
        grid["knn.neighbors"]["ndcg@10"]
    ) == {
        "as configured",
        "10",
        "1000",
    }
    pinned = cfg.model_copy(
        update={
            "retrieval": cfg.retrieval.model_copy(
                update={
                    "sources": [
                        cfg.retrieval.sources[0].model_copy(
                            update={"params": {"regularization": 80.0}}
                        ),
                        *cfg.retrieval.sources[1:],
                    ]
                }
            )
        }
    )
    assert set(
        calibrate(pinned, full, ItemAttributes.from_items([], full.items)).report["grid"]
    ) == {"ease.recency", "ease.rising", "ease.lowpass", "ease.autoencoder", "knn.neighbors"}
    assert calibration_summary(report).startswith("calibration (each user's latest item, 400 users")


def complement_case() -> pd.DataFrame:
    """Users 0..399 alternate. Odd ones walk a chain (item i, then i + 1) through items 5..199:
    only the recent-item source knows their next step. Even ones take three of items 200..289,
    then a hit (items 295..299): only popularity knows that, made popular by 100 fans who take
    nothing but hits."""
    rng = np.random.default_rng(5)
    rows = []
    for u in range(500):
        hits = N_ITEMS - HITS + rng.permutation(HITS)
        if u >= 400:
            rows += [(u, int(h)) for h in hits[:3]]
        elif u % 2:
            start = int(rng.integers(5, 196))
            rows += [(u, start + j) for j in range(4)]
        else:
            rows += [(u, int(i)) for i in rng.choice(np.arange(200, 290), 3, replace=False)]
            rows.append((u, int(hits[0])))
    return frame(rows)


def test_where_the_sources_complement_each_other_the_fused_order_ships() -> None:
    """``complement_case``: each source alone serves part of the users (the recent-item source
    fills even users' lists with neighbours before any filler); the fusion serves all, each
    source's best first (popularity at 0.99: no RRF ties, the chain's step first, hits
    interleaved)."""
    events = complement_case()
    cfg = config(
        [
            {"name": "knn", "model": "itemknn", "use": "recent", "quota": 50},
            {"name": "pop", "model": "popular", "quota": HITS, "weight": 0.99},
        ]
    )
    full = Interactions.from_events(events, WEIGHTS)
    chosen = calibrate(cfg, full, ItemAttributes.from_items([], full.items))
    report = chosen.report
    scores = only_scores(report)
    assert set(scores) == {"pop", "knn", "fused"}  # the listed popular source is the one tried
    assert report["chosen"] == "fused", scores
    assert scores["fused"] > max(scores["pop"], scores["knn"])
    fused = next(t for t in report["tried"] if t["name"] == "fused")
    assert fused["protocols"][0]["vs_best_single"][1] > 0  # won by more than its noise
    assert fused["worst_share"] == pytest.approx(
        scores["fused"] / max(scores["pop"], scores["knn"]), abs=1e-3
    )
    shipped = chosen.config.retrieval.sources
    assert [(x.name, x.weight) for x in shipped] == [("knn", 1.0), ("pop", 0.99)]  # the file's
    kept = report["grid"]["knn.neighbors"][
        "kept"
    ]  # the neighbourhood the grid kept is the one shipped
    assert shipped[0].params == ({} if kept == "as configured" else {"neighbors": kept})
    served, popular = served_on_validation(chosen.config, events)
    assert served == pytest.approx(scores["fused"], abs=1e-4)
    assert served > popular


def ease_alone_calibrated(**calibration: object) -> Calibration:
    """Calibration of one EASE source on ``popularity_case`` with ``calibration``'s keys set
    beside the companion weights off (an EASE grid step's own tests: decay, recency)."""
    cfg = config([{"name": "ease", "model": "ease", "quota": 50}])
    update = {
        "ease_lowpass": [],
        "ease_autoencoder": [],
        "ease_recency": [],
        "budget_seconds": 300.0,
        **calibration,
    }
    cc = cfg.calibration.model_copy(update=update)
    full = Interactions.from_events(popularity_case(), WEIGHTS)
    return calibrate(
        cfg.model_copy(update={"calibration": cc}), full, ItemAttributes.from_items([], full.items)
    )


def popularity_case() -> pd.DataFrame:
    """Histories are random tail items; every user's latest item is a hit none of them had."""
    rng = np.random.default_rng(3)
    rows = []
    for u in range(400):
        hits = rng.permutation(HITS)
        tail = rng.choice(np.arange(HITS, N_ITEMS), 4, replace=False)
        rows += [(u, int(hits[0])), *((u, int(i)) for i in tail), (u, int(hits[1]))]
    return frame(rows)


def test_train_prints_the_choice_and_the_saved_pipeline_serves_that_order(tmp_path: Path) -> None:
    """Through the CLI: one line names the choice, the manifest keeps every try, and the saved
    pipeline (trained on all events) answers each user with plain ``popular``'s list minus what
    they have, the order calibration chose."""
    events = popularity_case()
    csv = tmp_path / "events.csv"
    pd.DataFrame(
        {
            "user_id": events["user_id"],
            "item_id": events["item_id"],
            "timestamp": pd.to_datetime(events["ts"], unit="us", utc=True).dt.strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
        }
    ).to_csv(csv, index=False)
    toml = tmp_path / "pipeline.toml"
    toml.write_text(
        '[[retrieval.sources]]\nname = "ease"\nmodel = "ease"\nquota = 50\n\n'
        '[[retrieval.sources]]\nname = "knn"\nmodel = "itemknn"\nuse = "recent"\nquota = 50\n\n'
        "[ranking]\nenabled = false\n\n[calibration]\nenabled = true\n"
    )
    out = tmp_path / "pipe"
    args = ["train", "--data", str(csv), "--pipeline", str(toml), "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.stderr
    said = [line for line in result.stderr.splitlines() if line.startswith("calibration (")]
    assert len(said) == 1 and "serving popularity (validation NDCG@10" in said[0]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["calibration"]["chosen"] == "popularity"
    assert [t["name"] for t in manifest["calibration"]["tried"]] == [
        "popularity",
        "ease",
        "knn",
        "fused",
    ]
    assert all(len(t["protocols"][0]["interval"]) == 2 for t in manifest["calibration"]["tried"])
    assert (
        manifest["ranker_summary"]
        == "ranker not trained: calibration chose popularity on validation"
    )
    pipeline = load_artifact(out)
    users = np.array([f"u{u:04d}" for u in range(0, 400, 7)])
    top, _, _ = pipeline.top_k(users, 10)
    data = Interactions.from_events(events, WEIGHTS)
    rows = data.users.to_index(users)
    expected = create("popular").fit(data).recommend(rows, 10, exclude=data.matrix[rows])
    assert (
        data.items.to_external(expected.ids.ravel())
        == pipeline.bundle.items.to_external(top.ids.ravel())
    ).all()


def test_a_time_cut_validates_where_enough_users_return_with_new_items() -> None:
    """250 users: items on day 1, then on day 10 one new item each, and user 0 also repeats an
    old one. The latest 10 % of events (day 10) hold 250 returning users >= min_users 200, so the
    cut is used, the truth holds only items new to each user, and a min_users above 250 falls
    back to each user's latest item."""
    day = 86_400_000_000
    rows = []
    for u in range(250):
        rows += [(u, (u + j) % 40, 0) for j in range(8)]
        rows.append((u, 40 + u % 10, 9 * day))
    rows.append((0, 0, 9 * day + 1))
    events = purchases(*zip(*rows, strict=True))
    full = Interactions.from_events(events, WEIGHTS)
    val = time_cut_split(full, min_users=200, share=0.1, max_users=5000)
    assert val is not None and val.protocol == "temporal cut at the latest 0.1"
    assert len(val.users) == 250
    truth_items = full.items.to_external(val.truth.indices)
    expected = [
        f"i{40 + int(full.users.to_external(val.users[r])[1:]) % 10:04d}" for r in range(250)
    ]
    assert list(truth_items) == expected  # one new item each: user 0's repeat is not truth
    assert val.past.matrix.sum() > 0 and len(val.past.event_ts) == 250 * 8
    both = validation_splits(full, min_users=200, share=0.1, max_users=5000)
    assert [v.protocol for v in both] == [val.protocol, "each user's latest item"]
    assert time_cut_split(full, min_users=300, share=0.1, max_users=5000) is None
    (latest,) = validation_splits(full, min_users=300, share=0.1, max_users=5000)
    # user 0's latest event repeats an item they had: nothing to learn there, not held out
    assert latest.protocol == "each user's latest item" and len(latest.users) == 249
    assert "u0000" not in full.users.to_external(latest.users)


def test_small_time_cuts_are_pooled_into_one_protocol_until_enough_users_return(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Users 0..299 take two items on day 0 and one new item each on day 1 + u (in user order);
    users 300..399 one item on day 0: 1,000 events. By hand, the latest 10 / 20 / 30 % of events
    are the new items of users 200..299 / 100..299 / 0..299, so the three cuts hold 100, 200 and
    300 returning users, each cut with the day-0 events and the new items before it as its past.
    Below ``POOL_USERS`` all three pool into one protocol (600 users >= min_users 150, where a
    single cut would have been the 0.2 one alone); a lower pool target stops after two; a
    min_users above 600 leaves only each user's latest item."""
    day = 86_400_000_000
    rows = [(u, i, 0) for u in range(300) for i in (u % 20, 20 + u % 20)]
    rows += [(u, u % 40, 0) for u in range(300, 400)]
    rows += [(u, 40 + u % 10, (1 + u) * day) for u in range(300)]
    events = purchases(*zip(*rows, strict=True))
    full = Interactions.from_events(events, WEIGHTS)
    single = time_cut_split(full, min_users=150, share=0.1, max_users=5000)
    assert single is not None and len(single.users) == 200  # the old rule: the 0.2 cut alone
    splits = validation_splits(full, min_users=150, share=0.1, max_users=5000)
    cuts, latest = splits[:-1], splits[-1]
    assert latest.protocol == "each user's latest item"
    assert [v.protocol for v in cuts] == ["temporal cuts at the latest 0.1, 0.2, 0.3"] * 3
    for first, val in zip((200, 100, 0), cuts, strict=True):
        users = full.users.to_external(val.users)
        assert sorted(users) == [f"u{u:04d}" for u in range(first, 300)]
        expected = [f"i{40 + int(u[1:]) % 10:04d}" for u in users]
        assert list(full.items.to_external(val.truth.indices)) == expected
        assert len(val.past.event_ts) == 700 + first  # day 0, and the new items before the cut
    groups = grouped(splits)
    assert [len(g) for g in groups] == [3, 1]
    monkeypatch.setattr("recsmith.pipeline.validation.POOL_USERS", 250)
    two = validation_splits(full, min_users=150, share=0.1, max_users=5000)
    assert [v.protocol for v in two[:-1]] == ["temporal cuts at the latest 0.1, 0.2"] * 2
    assert [v.protocol for v in validation_splits(full, 700, 0.1, 5000)] == [latest.protocol]


def rising_case(new_items: bool) -> pd.DataFrame:
    """600 users in 5 taste clusters of 10 classics (items 0..49): each takes 6 of their
    cluster's classics over days 0..99. With ``new_items``, each then takes both of their
    cluster's two new items (50..59) at random moments of days 150..200, so the users who come
    back after any cut, and every user's latest item, take what is new in their own cluster;
    without, they take two more of their classics at those moments instead."""
    rng = np.random.default_rng(11)
    day = 86_400_000_000
    rows = []
    for u in range(600):
        c = u % 5
        classics = 10 * c + rng.permutation(10)
        rows += [(u, int(i), int(rng.integers(0, 100 * day))) for i in classics[:6]]
        later = [50 + 2 * c, 51 + 2 * c] if new_items else [int(i) for i in classics[6:8]]
        rows += [(u, i, int(rng.integers(150 * day, 200 * day))) for i in later]
    return purchases(*zip(*rows, strict=True))


def test_where_users_take_what_is_new_in_their_taste_ease_ships_with_the_rising_factor() -> None:
    """By construction what every validation user takes next is one of their cluster's new
    items: EASE ranks them below the cluster's other classics (fewer co-occurrences), the
    rising factor (recent share far above all-time share) lifts them, so both protocols reward
    it and calibration must keep it for what ships. Where the later items are more classics at
    the same moments (no item is rising: recent and all-time shares agree up to noise), the
    factor must not be kept."""
    cfg = config([{"name": "ease", "model": "ease", "quota": 50}])
    full = Interactions.from_events(rising_case(new_items=True), WEIGHTS)
    chosen = calibrate(cfg, full, ItemAttributes.from_items([], full.items))
    report = chosen.report
    assert [p["protocol"] for p in report["protocols"]] == [
        "temporal cuts at the latest 0.1, 0.2, 0.3",  # each holds < POOL_USERS
        "each user's latest item",
    ]
    rising = report["grid"]["ease.rising"]
    assert rising["kept"] in (0.5, 1.0)
    plain, kept = rising["ndcg@10"]["as configured"], rising["ndcg@10"][str(rising["kept"])]
    assert all(k > p + 0.1 for k, p in zip(kept, plain, strict=True))  # on both protocols
    shipped = next(s for s in chosen.config.retrieval.sources if s.name == "ease")
    assert shipped.params.get("rising", 0) > 0
    flat = Interactions.from_events(rising_case(new_items=False), WEIGHTS)
    report = calibrate(cfg, flat, ItemAttributes.from_items([], flat.items)).report
    assert report["grid"]["ease.rising"]["kept"] == "as configured"
    # nor in the fused order (it starts from the λ kept alone and moves only beyond noise)
    assert "rising" not in report["fused_grid"]["kept"].get("ease", {})


def test_the_ranker_is_tried_within_the_budget_and_named_when_it_does_not_fit(
    events: pd.DataFrame, config: PipelineConfig
) -> None:
    """On the simulated shop the ranker trains on the validation past and is scored beside the
    rest; whatever ships is never below the best single source; a budget of a millisecond
    leaves no time to try it, and the report says so."""
    full = Interactions.from_events(events, WEIGHTS)
    attrs = ItemAttributes.from_items([], full.items)
    on = PipelineConfig.model_validate(
        {**config.model_dump(), "calibration": {"enabled": True, "latest_folds": 1}}
    )
    chosen = calibrate(on, full, attrs)
    tried = {t["name"]: t for t in chosen.report["tried"]}
    assert "ranker" in tried, chosen.report["ranker"]
    # both protocols hold on the shop, and each configuration is scored on each of them: popularity
    # alone there is plain ``popular`` fitted on each split's past (pooled time cuts: each its
    # own), scored here independently
    cc = on.calibration
    seed = on.ranking.random_state
    splits = validation_splits(full, cc.min_users, cc.share, cc.max_users, seed, cc.latest_folds)
    groups = grouped(splits)
    assert [p["protocol"] for p in chosen.report["protocols"]] == [g[0].protocol for g in groups]
    assert groups[0][0].protocol.startswith("temporal cut") and len(groups) == 2
    for group, row in zip(groups, tried["popularity"]["protocols"], strict=True):
        per_user = []
        for val in group:
            popular = create("popular").fit(val.past)
            top = popular.recommend(val.users, 10, exclude=val.past.matrix[val.users])
            per_user.append(ndcg_at_k(top.ids, val.truth, 10))
        assert row["protocol"] == group[0].protocol
        # pooled cuts repeat users: each user once, as their mean over the cuts that hold them
        users = np.concatenate([val.users for val in group])
        by_user = pd.Series(np.concatenate(per_user)).groupby(users).mean()
        assert row["ndcg@10"] == pytest.approx(by_user.mean(), abs=1e-5)
    assert all(len(t["protocols"]) == 2 for t in tried.values())
    singles = [t["worst_share"] for n, t in tried.items() if n not in ("fused", "ranker")]
    assert tried[chosen.report["chosen"]]["worst_share"] >= max(singles)
    for i, protocol in enumerate(chosen.report["protocols"]):  # the single sources' best, only
        alone = [
            t["protocols"][i]["ndcg@10"] for n, t in tried.items() if n not in ("fused", "ranker")
        ]
        assert protocol["best_single_ndcg@10"] == pytest.approx(max(alone), abs=1e-5)
    assert chosen.use_ranker == (chosen.report["chosen"] == "ranker")
    tight = PipelineConfig.model_validate(
        {**on.model_dump(), "calibration": on.calibration.model_dump() | {"budget_seconds": 0.001}}
    )
    report = calibrate(tight, full, attrs).report
    assert report["ranker"].startswith("not tried: ") and "0.001 s CPU budget" in report["ranker"]
    assert "ranker" not in {t["name"] for t in report["tried"]}


def test_the_summary_names_the_choice_the_runners_up_and_changed_parameters() -> None:
    report = {
        "protocols": [
            {"protocol": "temporal cut at the latest 0.2", "validation_users": 1234},
            {"protocol": "each user's latest item", "validation_users": 5000},
        ],
        "seconds": 7.4,
        "tried": [
            {
                "name": "popularity",
                "worst_share": 0.4,
                "protocols": [{"ndcg@10": 0.05}, {"ndcg@10": 0.02}],
            },
            {
                "name": "ials",
                "worst_share": 0.95,
                "protocols": [{"ndcg@10": 0.0712}, {"ndcg@10": 0.04}],
            },
            {
                "name": "fused",
                "worst_share": 0.9,
                "protocols": [{"ndcg@10": 0.07}, {"ndcg@10": 0.038}],
            },
        ],
        "chosen": "ials",
        "grid": {
            "ials.alpha": {"param": "alpha", "kept": 10.0},
            "ease.regularization": {"param": "regularization", "kept": "as configured"},
        },
    }
    assert calibration_summary(report) == (
        "calibration (temporal cut at the latest 0.2, 1,234 users; each user's latest item, "
        "5,000 users; 7 s): serving ials (validation NDCG@10 0.0712 / 0.0400, worst share of "
        "the best single source 0.95; popularity 0.0500 / 0.0200, fused 0.0700 / 0.0380); "
        "ials alpha=10.0"
    )
    report["cpu_seconds"] = 3.2  # what the budget counted (``cpu_budget.py``)
    assert "5,000 users; 7 s, 3 s CPU): serving ials " in calibration_summary(report)
    few = {
        "protocols": [{"protocol": "each user's latest item", "validation_users": 5}],
        "reason": "5 validation users < 20: nothing decided",
    }
    assert calibration_summary(few) == (
        "calibration (each user's latest item, 5 users): 5 validation users < 20: nothing "
        "decided; serving as configured; EVIDENCE WEAK"
    )


def test_too_few_validation_users_decide_nothing() -> None:
    """Ten users with three items each: at most ten latest items to hold out, under the 20 a
    paired interval needs, so the file's configuration ships untouched and the report says so."""
    events = frame([(u, (u + j) % 7) for u in range(10) for j in range(3)])
    cfg = config([{"name": "knn", "model": "itemknn", "quota": 20}], ranker=True)
    full = Interactions.from_events(events, WEIGHTS)
    chosen = calibrate(cfg, full, ItemAttributes.from_items([], full.items))
    assert chosen.config == cfg and chosen.use_ranker
    assert chosen.report["protocols"] == [
        {"protocol": "each user's latest item", "validation_users": 10}
    ]
    assert chosen.report["reason"] == "10 validation users < 20: nothing decided"
    assert "tried" not in chosen.report


def test_every_user_with_one_item_trains_and_says_why_nothing_is_held_out(
    tmp_path: Path,
) -> None:
    """400 users, one purchase each (hours apart): no user has a second item, so no latest item
    can be held out (this raised "truth value of a sparse array" in ``holdout_at``) and no time
    cut has returning users. ``recsmith train`` with the example pipeline trains, and its line and
    manifest say why nothing was decided."""
    assert len(latest_item_split(
        Interactions.from_events(frame([(u, u % 37) for u in range(400)]), WEIGHTS), 100
    ).users) == 0  # fmt: skip
    csv = tmp_path / "events.csv"
    pd.DataFrame(
        {
            "user_id": [f"u{u}" for u in range(400)],
            "item_id": [f"i{u % 37}" for u in range(400)],
            "timestamp": [1_700_000_000 + 3600 * u for u in range(400)],
        }
    ).to_csv(csv, index=False)
    out = tmp_path / "pipe"
    example = Path(__file__).parents[2] / "examples" / "pipeline.toml"
    args = ["train", "--data", str(csv), "--pipeline", str(example), "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.stderr
    why = "0 validation users < 20: nothing decided (no user has two distinct items: none can "
    assert f"calibration (each user's latest item, 0 users): {why}" in result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["calibration"]["reason"].startswith(why)


def noise_after_the_cut_case(seed: int, step_us: int = 3_600_000) -> pd.DataFrame:
    """400 users walk a chain (items 5..199), one step each ``step_us`` (3.6 s, as in §42: one
    sitting; an hour: each step a later visit); the last item of every odd one
    is the chain's next step (only the recent-item source knows it), of every even one a hit
    (items 295..299, popular among 80 fans: only popularity knows it). 400 background users make
    a pool of items 300..1299 known. 120 users, after every one of these, take two pool items and
    a chain item, then — after a gap that every time cut falls into — one item drawn at random
    from the chain and the hits: the time cut's truths are pure noise."""
    rng = np.random.default_rng(seed)
    rows: list[tuple[int, int, int]] = []  # (user, item, hour × 1000 + step)
    for u in range(400):
        start = int(rng.integers(5, 190))
        last = start + 4 if u % 2 else 295 + int(rng.integers(0, 5))
        rows += [(u, i, u * 1000 + j) for j, i in enumerate([*range(start, start + 4), last])]
    for u in range(400, 800):
        rows += [(u, int(i), u * 1000 + j) for j, i in enumerate(rng.choice(1000, 3, False) + 300)]
    for u in range(800, 920):
        early = [*(rng.choice(1000, 2, replace=False) + 300), int(rng.integers(5, 200))]
        rows += [(u, int(i), u * 1000 + j) for j, i in enumerate(early)]
        pool = [i for i in [*range(5, 200), *range(295, 300)] if i != early[2]]
        rows.append((u, int(rng.choice(pool)), (5000 + u) * 1000))
    for u in range(920, 1000):
        rows += [(u, int(i), u * 1000 + j) for j, i in enumerate(295 + rng.permutation(5)[:3])]
    users, items, steps = (np.array(c) for c in zip(*rows, strict=True))
    return purchases(users, items, steps * step_us)


def test_a_time_cut_of_pure_noise_does_not_decide_and_the_clear_protocol_chooses() -> None:
    """The pooled time cuts hold the 111 users whose held-out item is random: no source finds
    it beyond luck (popularity 0.027, the recent-item source 0.014 on this draw: noise); each
    user's latest item has a clear winner, the recent-item source (0.32 vs popularity's 0.17,
    beyond noise). Read as signal, the cut gives the winner the worst share 0.52, below
    popularity's 0.55 on the latest item, and popularity would ship — as on ml-100k@0.1
    (BENCHMARKS §42). The cut does not decide (the report and the summary say so).

    What ships depends on ``calibration.sitting_bar``: the chain's steps are 3.6 s apart, so
    880 of the 1,000 latest items follow the user's previous event within 30 minutes (0.88 >=
    0.7). With the bar off (the default, §155) the recent-item source ships, as before §150 (the
    clear protocol chooses). With it on, the cut is read as the only protocol asking what a later
    visit takes, and it bars the recent-item source, whose 0.014 there is below popularity's
    0.027: popularity ships on a noise cut — the price of the bar on bursty data judged on each
    user's last item (§150's correction)."""
    events = noise_after_the_cut_case(seed=0)
    knn = [{"name": "knn", "model": "itemknn", "use": "recent", "quota": 50}]
    full = Interactions.from_events(events, WEIGHTS)
    attrs = ItemAttributes.from_items([], full.items)
    report = calibrate(config(knn, sitting_bar=False), full, attrs).report
    cut, latest = report["protocols"]
    assert cut["protocol"].startswith("temporal cuts at the latest") and not cut["decides"]
    assert cut["validation_users"] == 111 and cut["evidence"].startswith("popularity − knn +0.0")
    assert latest["decides"] and latest["evidence"].startswith("knn − popularity +0.1")
    scores = {t["name"]: [p["ndcg@10"] for p in t["protocols"]] for t in report["tried"]}
    assert scores["knn"][1] > 1.5 * scores["popularity"][1]  # the clear winner on the latest item
    assert scores["knn"][0] < 0.6 * scores["popularity"][0]  # and the cut's luck against it
    assert report["chosen"] == "knn", report["reason"]
    summary = calibration_summary(report)
    assert ", 111 users, not deciding (popularity − knn " in summary
    said = "the latest items continue sittings, sitting bar off (calibration.sitting_bar)"
    assert said in summary
    assert report["sittings"] == {
        "latest_item_within_gap": 0.88,
        "gap": "30 min",
        "measures": "the next step of a sitting (>= 0.7)",
        "sitting_bar": False,
        "time_cut_bars": False,
    }
    assert "vetoed" not in report and "bars_below_popularity" not in cut

    report = calibrate(config(knn, sitting_bar=True), full, attrs).report  # switched on
    cut, latest = report["protocols"]
    assert not cut["decides"] and latest["decides"] and "bars_below_popularity" in cut
    assert report["sittings"]["sitting_bar"] and report["sittings"]["time_cut_bars"]
    assert report["vetoed"] == ["knn"]
    assert report["chosen"] == "popularity", report["reason"]
    assert report["reason"].startswith("best single source ahead of popularity (knn, ")
    assert ": vetoed, below popularity on a time cut" in report["reason"]
    summary = calibration_summary(report)
    assert "barring what falls below popularity" in summary and "sitting bar off" not in summary


def test_a_gridded_source_that_proposes_nothing_alone_is_not_gridded() -> None:
    """Forty users, each with three items nobody else has: on the validation past, item-kNN's
    neighbours of a user's items are only that user's own (seen) items, and EASE scores every
    other item exactly 0 (no path: each user's items are a component of their own), so neither
    proposes anything, nor is tried alone — and their grids must skip them, not fail the whole
    training. iALS scores every item (a factor model's 0 is a score) and is gridded."""
    events = frame([(u, 3 * u + j) for u in range(40) for j in range(3)])
    cfg = config(
        [
            {"name": "ials", "model": "ials", "quota": 20},
            {"name": "ease", "model": "ease", "quota": 20},
            {"name": "knn", "model": "itemknn", "quota": 20},
        ]
    )
    full = Interactions.from_events(events, WEIGHTS)
    chosen = calibrate(cfg, full, ItemAttributes.from_items([], full.items))
    assert not {"knn", "ease"} & {t["name"] for t in chosen.report["tried"]}
    assert "ials.alpha" in chosen.report["grid"]
    assert not any(key.startswith("ease.") for key in chosen.report["grid"])
    assert not any(key.startswith("knn.") for key in chosen.report["grid"])
