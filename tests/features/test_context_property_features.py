"""Context, item-property and profile features on a tiny shop, every value computed by hand."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime

import numpy as np
import pytest
from scipy import sparse

from recsmith.config import EventSettings
from recsmith.events.schema import Item
from recsmith.events.validate import validate_events
from recsmith.features.interactions import Interactions
from recsmith.features.items import ItemCatalog
from recsmith.pipeline.config import RankingConfig
from recsmith.pipeline.item_attributes import ItemAttributes
from recsmith.pipeline.training import feature_state
from recsmith.ranking.context import context_columns, first_events, moments_of
from recsmith.ranking.features import candidate_features, feature_names
from recsmith.retrieval.candidates import Candidates
from recsmith.retrieval.queries import Queries

NAN = np.nan
THURSDAY_17H = int(datetime(2026, 12, 3, 17, 24, tzinfo=UTC).timestamp() * 1e6)
MONDAY_0H = int(datetime(2024, 1, 1, 0, 30, tzinfo=UTC).timestamp() * 1e6)


def test_hour_day_and_device_from_the_moment_and_its_context() -> None:
    moments = np.array([THURSDAY_17H, MONDAY_0H, -1, THURSDAY_17H])
    contexts = (
        {"device": "Tablet", "hour": 5, "page": "home"},  # the context's hour wins
        {"device": "watch", "page": 2},  # a device not listed: 0 ("other")
        {"page": True},  # no time, no device: unknown
        {"hour": 24},  # not an hour: the moment's
    )
    got = context_columns(moments, contexts, ["page"])
    home = float(zlib.crc32(b"home") % (1 << 24))
    expected = np.array(
        [[5, 3, 3, home], [0, 0, 0, 2.0], [NAN, NAN, NAN, 1.0], [17, 3, NAN, NAN]], np.float32
    )
    np.testing.assert_array_equal(got, expected)
    no_time = context_columns(None, ({},), [])
    assert np.isnan(no_time).all() and no_time.shape == (1, 3)


def _event(user: str, item: str, hour: int, context: dict | None = None) -> dict:
    ts = datetime(2026, 11, 2, hour, tzinfo=UTC).timestamp()  # a Monday
    return {
        "user_id": user,
        "item_id": item,
        "event_type": "view",
        "timestamp": ts,
        **({"context": context} if context else {}),
    }


@pytest.fixture
def shop() -> tuple[Interactions, ItemAttributes]:
    """u1 saw a, b, c; u2 saw c; u3 saw a (then, late, d on mobile); nobody saw e. Brands: a, b,
    e x; c y; d none. Prices 10, 20, 30, 10 (d none): quintile edges 10, 12, 18, 24, so bands
    2, 4, 5, 2; every item has a unique url (an identifier: no feature)."""
    records = [
        _event("u1", "a", 1),
        _event("u1", "b", 2, {"device": "desktop"}),
        _event("u1", "c", 3),
        _event("u2", "c", 4, {"device": "mobile"}),
        _event("u3", "a", 0),
        _event("u3", "d", 20, {"device": "mobile", "page": "cart"}),
    ]
    frame, rejected = validate_events(records, EventSettings())
    assert not rejected
    profiles = {"u1": {"gender": "F", "age": 30}, "u2": {"gender": "M"}, "u3": {"gender": "F"}}
    items = [
        Item(item_id="a", properties={"brand": "x", "price": 10, "rating": 4.5, "url": "/a"}),
        Item(item_id="b", properties={"brand": "x", "price": 20, "rating": 3.0, "url": "/b"}),
        Item(item_id="c", properties={"brand": "y", "price": 30, "url": "/c"}),
        Item(item_id="d", properties={"url": "/d"}),
        Item(item_id="e", properties={"brand": "x", "price": 10, "url": "/e"}),
    ]
    catalog = ItemCatalog.from_items(items)
    data = Interactions.from_events(
        frame, EventSettings().weights, profiles=profiles, catalog=catalog
    )
    return data, ItemAttributes.from_items(items, data.items, max_properties=8)


def test_training_queries_stand_for_each_users_first_event_in_the_window(
    shop: tuple[Interactions, ItemAttributes],
) -> None:
    data, _ = shop
    u1_second = int(datetime(2026, 11, 2, 2, tzinfo=UTC).timestamp()) * 1_000_000
    window = data.event_ts >= u1_second  # from u1's second event on (events are in time order)
    users = data.users.to_index(["u1", "u2", "u3", "nobody"])
    first = first_events(data, window, users)
    ts, contexts = moments_of(data, first)
    hours = [datetime.fromtimestamp(t / 1e6, UTC).hour if t >= 0 else None for t in ts]
    assert hours == [2, 4, 20, None]  # u1's b, u2's c, u3's d (its a came before the window)
    assert contexts == (
        {"device": "desktop"},
        {"device": "mobile"},
        {"device": "mobile", "page": "cart"},
        {},
    )


def test_property_affinity_segment_popularity_and_numbers_by_hand(
    shop: tuple[Interactions, ItemAttributes],
) -> None:
    data, attrs = shop
    state = feature_state(data, attrs, RankingConfig())
    u = dict(zip(["u1", "u2", "u3"], data.users.to_index(["u1", "u2", "u3"]).tolist(), strict=True))
    i = dict(zip("abcd", data.items.to_index(list("abcd")).tolist(), strict=True))
    rows = [("u1", "a"), ("u2", "a"), ("u1", "d"), ("u3", "c"), (None, "a")]
    queries = Queries(
        np.array([u["u1"], u["u2"], u["u3"], -1], np.int32),
        sparse.csr_array((4, data.n_items)),
        sparse.csr_array((4, data.n_items)),
        ({}, {}, {}, {}),
    )
    q_of = {"u1": 0, "u2": 1, "u3": 2, None: 3}
    cands = Candidates(
        4,
        ("s",),
        np.array([q_of[user] for user, _ in rows], np.int32),
        np.array([i[item] for _, item in rows], np.int32),
        np.zeros(len(rows), np.float32),
        np.zeros((len(rows), 1), np.float32),
        np.ones((len(rows), 1), np.int16),
    )
    names = feature_names(cands.sources, state)
    assert not any("url" in n for n in names)  # an identifier
    got = candidate_features(state, queries, cands)
    columns = [
        "user_affinity_brand",
        "user_affinity_price_band",
        "item_rating",
        "segment_popularity_gender",
        "user_age",
    ]
    table = got[:, [names.index(c) for c in columns]]
    expected = np.array(
        [
            # u1 saw x, x, y: brand x 2/3; bands 2, 4, 5: band 2 1/3; F saw a, b, c, a, d: a 2/5
            [2 / 3, 1 / 3, 4.5, 2 / 5, 30],
            # u2 saw only c (brand y, band 5); M saw only c; u2 has no age
            [0, 0, 4.5, 0, NAN],
            # d has no brand, price or rating; F saw d once of 5
            [NAN, NAN, NAN, 1 / 5, 30],
            # u3 saw a (x, band 2) and d (neither): c's brand y 0, band 5 0; F saw c 1 of 5
            [0, 0, NAN, 1 / 5, NAN],
            # an unknown visitor: only the item's own numbers
            [NAN, NAN, 4.5, NAN, NAN],
        ],
        np.float32,
    )
    np.testing.assert_allclose(table, expected, rtol=1e-6)


def test_the_most_declared_properties_are_chosen_up_to_the_cap(
    shop: tuple[Interactions, ItemAttributes],
) -> None:
    data, _ = shop
    items = [
        Item(item_id="a", properties={"brand": "x", "price": 10, "rating": 4.5}),
        Item(item_id="b", properties={"brand": "x", "price": 20, "rating": 3.0}),
        Item(item_id="c", properties={"brand": "y", "price": 30}),
        Item(item_id="e", properties={"price": 10, "url": "/e"}),
    ]
    # price_band (bands 2, 4, 5, 2) is declared on 4 items, brand on 3, rating on 2, url on 1 (an
    # identifier: its one value is distinct): a cap of 2 keeps the first two
    two = ItemAttributes.from_items(items, data.items, max_properties=2).properties
    assert two is not None and two.names.tolist() == ["price_band", "brand"]
    three = ItemAttributes.from_items(items, data.items, max_properties=8).properties
    assert three is not None and three.names.tolist() == ["price_band", "brand", "rating"]
    none = ItemAttributes.from_items(items, data.items, max_properties=0).properties
    assert none is not None and none.names.tolist() == []
    cfg = RankingConfig(max_property_features=1)
    state = feature_state(data, ItemAttributes.from_items(items, data.items, 8), cfg)
    assert state.profile_names.tolist() == ["gender"]  # 3 profiles have it, 1 an age
    assert state.item_property_names.tolist() == ["price_band"]  # the ranking cap applies too


def test_no_event_in_the_window_is_an_unknown_moment(
    shop: tuple[Interactions, ItemAttributes],
) -> None:
    data, _ = shop
    users = data.users.to_index(["u1", "u2"])
    first = first_events(data, np.zeros(len(data.event_ts), bool), users)
    assert first.tolist() == [-1, -1]
    ts, contexts = moments_of(data, first)
    assert ts.tolist() == [-1, -1] and contexts == ({}, {})
