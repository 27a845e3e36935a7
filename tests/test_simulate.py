"""The synthetic shop: deterministic, importable as-is, and carrying a learnable personal signal."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from recsmith.config import DEFAULT_WEIGHTS, EventSettings
from recsmith.events.validate import validate_events, validate_items
from recsmith.simulate import EVENT_TYPES, Simulation, SimulationConfig, simulate

SMALL = SimulationConfig(n_users=300, n_items=200, n_categories=8, days=20, seed=7)


@pytest.fixture(scope="module")
def sim() -> Simulation:
    return simulate()


def _ts(events: pd.DataFrame) -> pd.Series:
    return pd.to_datetime(events["timestamp"], utc=True, format="ISO8601")


def test_default_size_is_about_sixty_thousand_events() -> None:
    """Its speed is a benchmark's business (benchmarks/simulate_default.py), not a unit test's."""
    assert 50_000 < len(simulate().events) < 90_000


def test_same_seed_same_data_other_seed_other_data() -> None:
    a, b = simulate(SMALL), simulate(SMALL)
    pd.testing.assert_frame_equal(a.events, b.events)
    assert a.items == b.items
    np.testing.assert_array_equal(a.user_factors, b.user_factors)
    c = simulate(SMALL, seed=8)
    assert not a.events.equals(c.events)
    assert a.items != c.items


def test_no_user_seed_keeps_every_seeds_data() -> None:
    """The digest of ``simulate(SMALL)`` as it was before ``user_seed`` existed."""
    digest = hashlib.sha256(pd.util.hash_pandas_object(simulate(SMALL).events).to_numpy().tobytes())
    assert digest.hexdigest() == "d6f9b4e45f36bdfadec7d6c536146e80ae84b72e0e4864daf855142c2d17fdd7"


def test_user_seed_shards_share_the_catalogue_not_the_customers() -> None:
    a, b = simulate(SMALL, user_seed=1), simulate(SMALL, user_seed=2)
    assert a.items == b.items
    np.testing.assert_array_equal(a.item_factors, b.item_factors)
    np.testing.assert_array_equal(a.item_bias, b.item_bias)
    assert not np.allclose(a.user_factors, b.user_factors)
    assert not a.events["item_id"].equals(b.events["item_id"])
    pd.testing.assert_frame_equal(a.events, simulate(SMALL, user_seed=1).events)


def test_chunk_size_does_not_change_the_result() -> None:
    whole = simulate(SMALL)
    chunked = simulate(SMALL, chunk_cells=SMALL.n_items * 7)  # 7 users per block
    pd.testing.assert_frame_equal(whole.events, chunked.events)


def test_shapes_and_string_ids(sim: Simulation) -> None:
    cfg = sim.config
    assert list(sim.events.columns) == [
        "user_id",
        "item_id",
        "event_type",
        "value",
        "timestamp",
        "session_id",
    ]
    assert len(sim.items) == len(sim.item_map) == cfg.n_items
    assert len(sim.user_map) == cfg.n_users
    assert sim.user_factors.shape == (cfg.n_users, cfg.n_factors)
    assert sim.item_factors.shape == (cfg.n_items, cfg.n_factors)
    for col, prefix in (("user_id", "u"), ("item_id", "i"), ("session_id", "s")):
        values = sim.events[col].to_numpy(dtype=object)
        assert all(isinstance(v, str) and v.startswith(prefix) for v in values[:1000])
        assert sim.events[col].str.startswith(prefix).all()
    assert sim.events["value"].isna().all()
    assert set(sim.events["item_id"]) <= {item["item_id"] for item in sim.items}
    assert all(isinstance(i, str) for i in sim.user_map.external_ids)


def test_event_types_are_known(sim: Simulation) -> None:
    types = set(sim.events["event_type"])
    assert types <= set(DEFAULT_WEIGHTS)
    assert types == set(EVENT_TYPES)
    counts = sim.events["event_type"].value_counts()
    assert counts["view"] > counts["add_to_cart"] > counts["purchase"] > 0


def test_timestamps_increase_within_sessions_and_stay_in_window(sim: Simulation) -> None:
    ts = _ts(sim.events)
    start = pd.Timestamp(sim.config.start)
    assert ts.min() >= start
    assert ts.max() < start + pd.Timedelta(days=sim.config.days)
    assert ts.is_monotonic_increasing
    frame = sim.events.assign(ts=ts)
    assert frame.groupby("session_id")["ts"].apply(lambda s: s.is_monotonic_increasing).all()
    assert (frame.groupby("session_id")["user_id"].nunique() == 1).all()
    gaps = frame.groupby("session_id")["ts"].diff().dropna()
    assert (gaps > pd.Timedelta(0)).all()
    assert gaps.median() < pd.Timedelta(minutes=5)


def test_popularity_is_skewed(sim: Simulation) -> None:
    counts = sim.events["item_id"].value_counts()
    top = counts.iloc[: sim.config.n_items // 10].sum()
    assert top / len(sim.events) > 0.30


def test_preference_agrees_with_behaviour(sim: Simulation) -> None:
    users = sim.user_map.external_ids[:200]
    pref = sim.preference(users, sim.item_map.external_ids)
    assert pref.shape == (200, sim.config.n_items)
    events = sim.events[sim.events["user_id"].isin(set(users))]
    rows = sim.user_map.to_index(events["user_id"])
    cols = sim.item_map.to_index(events["item_id"])
    touched = pref[rows, cols]
    assert touched.mean() > pref.mean() + 1.0
    bought = touched[(events["event_type"] == "purchase").to_numpy()]
    assert bought.mean() > touched.mean()
    # Vectorised and consistent with a per-pair computation.
    one = sim.preference([users[3]], [sim.item_map.external_ids[5]])
    assert one.shape == (1, 1) and one[0, 0] == pytest.approx(pref[3, 5])


def test_conversion_probabilities_rise_with_preference(sim: Simulation) -> None:
    users, items = sim.user_map.external_ids[:50], sim.item_map.external_ids
    pref = sim.preference(users, items)
    buy = sim.purchase_probability(users, items)
    cart = sim.cart_probability(users, items)
    assert buy.shape == pref.shape
    assert ((buy >= 0) & (buy <= cart) & (cart <= 1)).all()
    order = np.argsort(pref.ravel())
    assert (np.diff(buy.ravel()[order]) >= -1e-12).all()


def test_unknown_ids_raise(sim: Simulation) -> None:
    with pytest.raises(KeyError, match="nobody"):
        sim.preference(["nobody"], sim.item_map.external_ids[:3])
    with pytest.raises(KeyError, match="i-missing"):
        sim.purchase_probability(sim.user_map.external_ids[:1], np.array(["i-missing"]))


def test_later_behaviour_follows_earlier_tastes(sim: Simulation) -> None:
    """A personal signal exists: on a temporal split, per-user category taste beats popularity."""
    cats = pd.Series(sim.item_category, index=sim.item_map.external_ids)
    frame = sim.events.assign(cat=sim.events["item_id"].map(cats).to_numpy())
    cut = int(len(frame) * 0.8)  # events are time-ordered
    train, test = frame.iloc[:cut], frame.iloc[cut:]
    share = pd.crosstab(train["user_id"], train["cat"], normalize="index")
    share = share.reindex(columns=range(sim.config.n_categories), fill_value=0.0)
    test = test[test["user_id"].isin(share.index)]
    top3 = np.argsort(-share.to_numpy(), axis=1)[:, :3]
    row = share.index.get_indexer(test["user_id"])
    own = (top3[row] == test["cat"].to_numpy()[:, None]).any(axis=1).mean()
    shuffled = np.random.default_rng(0).permutation(len(share))[row]
    other = (top3[shuffled] == test["cat"].to_numpy()[:, None]).any(axis=1).mean()
    assert own > 0.5 and own > 2 * other

    items = sim.item_map.external_ids
    pop = train["item_id"].value_counts().reindex(items, fill_value=0).to_numpy(dtype=float)
    truth = test.groupby("user_id")["item_id"].agg(set)
    personal = share.loc[truth.index].to_numpy()[:, sim.item_category] * pop + 1e-3 * pop
    top_personal = items[np.argsort(-personal, axis=1)[:, :10]]
    top_pop = set(items[np.argsort(-pop)[:10]])
    denom = truth.map(lambda t: min(10, len(t))).to_numpy()
    recall_pop = np.mean([len(t & top_pop) for t in truth] / denom)
    recall_personal = np.mean(
        [len(t & set(r)) for t, r in zip(truth, top_personal, strict=True)] / denom
    )
    assert recall_personal > 1.2 * recall_pop


def test_events_pass_validation_unchanged(sim: Simulation) -> None:
    frame, rejected = validate_events(sim.events, EventSettings())
    assert rejected == []
    assert len(frame) == len(sim.events)
    expected = _ts(sim.events).to_numpy(dtype="datetime64[us]").astype(np.int64)
    np.testing.assert_array_equal(frame["ts"].to_numpy(), expected)
    assert frame["event_id"].is_unique


def test_items_pass_validation(sim: Simulation) -> None:
    good, rejected = validate_items(sim.items)
    assert rejected == []
    assert len(good) == sim.config.n_items
    item = good[0]
    assert len(item.categories) == 1 and item.categories[0] in sim.category_names
    assert isinstance(item.properties["price"], float) and item.properties["price"] > 0
    assert isinstance(item.properties["brand"], str) and item.text and item.available
    assert item.created_at is not None and item.created_at < sim.config.start


def test_config_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="n_users"):
        SimulationConfig(n_users=0)
    with pytest.raises(ValueError, match="focused_session_share"):
        simulate(focused_session_share=1.5)
    with pytest.raises(TypeError):
        simulate(no_such_knob=1)
