"""Sequential rules (``transitions``) against transitions counted by hand on tiny sequences."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from recsmith.config import EventSettings
from recsmith.features.interactions import Interactions
from recsmith.models.registry import create
from recsmith.models.transitions import Transitions, timed_sequences
from recsmith.retrieval.queries import Queries
from recsmith.retrieval.sources import ModelSource
from recsmith.sparse_rows import newest_first


def sequences(rows: list[tuple[str, str, int]]) -> Interactions:
    """(user, item, second) view events; given out of time order on purpose, so only the times
    can put them in sequence."""
    frame = pd.DataFrame(rows[::-1], columns=["user_id", "item_id", "second"])
    return Interactions.from_events(
        pd.DataFrame(
            {
                "event_id": [f"e{n}" for n in range(len(frame))],
                "user_id": frame.user_id,
                "item_id": frame.item_id,
                "event_type": "view",
                "value": np.nan,
                "session_id": None,
                "context": None,
                "ts": (1_700_000_000 + frame.second) * 1_000_000,
            }
        ),
        EventSettings().weights,
    )


# u1: a b c d   u2: a c   u3: b b a   (u3's b twice back to back counts once)
DATA = sequences(
    [
        ("u1", "a", 1), ("u1", "b", 2), ("u1", "c", 3), ("u1", "d", 4),
        ("u2", "a", 1), ("u2", "c", 5),
        ("u3", "b", 1), ("u3", "b", 2), ("u3", "a", 3),
    ]
)  # fmt: skip


def rules(model: Transitions, data: Interactions) -> dict[tuple[str, str], float]:
    """The fitted rule matrix as {(from, to): weight}, in external ids."""
    m = model.association_.tocoo()
    names = data.items.to_external(np.arange(data.n_items))
    return {(names[i], names[j]): float(v) for i, j, v in zip(m.row, m.col, m.data, strict=True)}


def test_rules_weigh_followers_by_distance_and_sum_to_one_per_item() -> None:
    # steps 2: u1 gives a->b 1, b->c 1, c->d 1, a->c 1/2, b->d 1/2; u2 gives a->c 1;
    # u3 gives b->a 1. Raw: a: b 1, c 1.5 (sum 2.5); b: c 1, d 0.5, a 1 (sum 2.5); c: d 1.
    model = create("transitions", steps=2).fit(DATA)
    assert isinstance(model, Transitions)
    assert rules(model, DATA) == pytest.approx(
        {
            ("a", "b"): 0.4, ("a", "c"): 0.6,
            ("b", "c"): 0.4, ("b", "d"): 0.2, ("b", "a"): 0.4,
            ("c", "d"): 1.0,
        }
    )  # fmt: skip


def test_steps_bound_how_far_a_follower_counts() -> None:
    # steps 1: only neighbours. a: b 1, c 1; b: c 1, a 1; c: d 1. steps 3 adds u1's a->d (1/3).
    one = rules(create("transitions", steps=1).fit(DATA), DATA)
    assert one == pytest.approx(
        {("a", "b"): 0.5, ("a", "c"): 0.5, ("b", "c"): 0.5, ("b", "a"): 0.5, ("c", "d"): 1.0}
    )
    three = rules(create("transitions", steps=3).fit(DATA), DATA)
    raw_a = {"b": 1.0, "c": 1.5, "d": 1 / 3}
    total = sum(raw_a.values())
    assert {k[1]: v for k, v in three.items() if k[0] == "a"} == pytest.approx(
        {j: v / total for j, v in raw_a.items()}
    )


def test_an_item_met_again_later_is_not_its_own_successor() -> None:
    data = sequences([("u", "a", 1), ("u", "b", 2), ("u", "a", 3)])
    assert rules(create("transitions", steps=5).fit(data), data) == pytest.approx(
        {("a", "b"): 1.0, ("b", "a"): 1.0}
    )


def test_a_user_is_scored_from_the_latest_items_the_last_leading() -> None:
    # history 2: u1's latest are d (weight 1), c (weight 1/2): only c has rules (d 1.0), so
    # d scores 0.5; u3's latest a (1), then b (1/2): b 1*0.4 + ... a's rules b 0.4, c 0.6;
    # b's rules c 0.4, d 0.2, a 0.4 at 1/2: c 0.6 + 0.2 = 0.8, b 0.4, d 0.1, a 0.2.
    model = create("transitions", steps=2, history=2).fit(DATA)
    users = DATA.users.to_index(["u1", "u3"])
    top = model.recommend(users, 4)
    names = DATA.items.to_external
    got = [
        dict(zip(names(ids[ids >= 0]), scores[ids >= 0].tolist(), strict=True))
        for ids, scores in zip(top.ids, top.scores, strict=True)
    ]
    assert got[0] == pytest.approx({"d": 0.5, "a": 0.0, "b": 0.0, "c": 0.0})
    assert got[1] == pytest.approx({"c": 0.8, "b": 0.4, "a": 0.2, "d": 0.1})
    # history 1: only the last item counts — u3 from a alone
    last = create("transitions", steps=2, history=1).fit(DATA)
    scores = last.recommend(users[1:], 2).scores[0]
    assert scores.tolist() == pytest.approx([0.6, 0.4])


def test_saved_and_loaded_it_answers_the_same(tmp_path) -> None:  # type: ignore[no-untyped-def]
    model = create("transitions", steps=2, history=2).fit(DATA)
    model.save(tmp_path / "m")
    again = Transitions.load(tmp_path / "m")
    users = np.arange(DATA.n_users)
    assert np.array_equal(model.recommend(users, 3).ids, again.recommend(users, 3).ids)
    assert again.config == model.config


@pytest.mark.parametrize("param", ["steps", "history", "neighbors"])
def test_a_non_positive_parameter_is_refused_by_name(param: str) -> None:
    with pytest.raises(Exception, match=param):
        create("transitions", **{param: 0})


def test_events_at_one_time_are_neighbours_both_ways() -> None:
    # b and c at the same second: no order between them, so b->c and c->b weigh the same, and
    # both are one step after a and one before d. steps 1, raw: a: b 1, c 1; b: c 1, d 1;
    # c: b 1, d 1 — halves once each row sums to one.
    data = sequences([("u", "a", 1), ("u", "b", 2), ("u", "c", 2), ("u", "d", 3)])
    got = rules(create("transitions", steps=1).fit(data), data)
    assert got == pytest.approx(
        {
            ("a", "b"): 0.5, ("a", "c"): 0.5,
            ("b", "c"): 0.5, ("b", "d"): 0.5,
            ("c", "b"): 0.5, ("c", "d"): 0.5,
        }
    )  # fmt: skip


def test_the_same_events_in_another_row_order_give_the_same_rules_and_scores() -> None:
    # 40 users, 30 items, seconds drawn from 0..5: most neighbours tie
    rng = np.random.default_rng(3)
    rows = [
        (f"u{u}", f"i{rng.integers(30)}", int(rng.integers(6))) for u in range(40) for _ in range(8)
    ]
    shuffled = [rows[k] for k in rng.permutation(len(rows))]
    fits = []
    for order in (rows, shuffled):
        data = sequences(order)
        model = create("transitions", steps=3, history=2).fit(data)
        users = data.users.to_index([f"u{u}" for u in range(40)])
        top = model.recommend(users, 5)
        names = data.items.to_external
        lists = [
            dict(zip(names(ids[ids >= 0]), np.round(s[ids >= 0], 6).tolist(), strict=True))
            for ids, s in zip(top.ids, top.scores, strict=True)
        ]
        fits.append((rules(model, data), lists))
    assert fits[0][0] == pytest.approx(fits[1][0])
    assert fits[0][1] == fits[1][1]


def test_an_item_met_twice_in_the_history_adds_both_weights() -> None:
    # latest first: c (1), a (1/2), b (1/3), a (1/4): a weighs 3/4
    data = sequences([("u", "a", 1), ("u", "b", 2), ("u", "a", 3), ("u", "c", 4)])
    model = create("transitions", history=4).fit(data)
    row = model.user_items_[data.users.to_index(["u"])].toarray().ravel()
    got = dict(zip(data.items.to_external(np.arange(data.n_items)), row.tolist(), strict=True))
    assert got == pytest.approx({"a": 0.75, "b": 1 / 3, "c": 1.0})


def test_the_history_counts_time_steps_not_events() -> None:
    # b and c share the latest second: both weigh 1, a (one step before) 1/2
    data = sequences([("u", "a", 1), ("u", "b", 2), ("u", "c", 2)])
    model = create("transitions", history=4).fit(data)
    row = model.user_items_[data.users.to_index(["u"])].toarray().ravel()
    got = dict(zip(data.items.to_external(np.arange(data.n_items)), row.tolist(), strict=True))
    assert got == pytest.approx({"a": 0.5, "b": 1.0, "c": 1.0})


def test_a_huge_tie_is_cut_into_runs_of_steps_plus_one_items() -> None:
    """Five items in one second with steps 1: runs of two in item order, [a b] [c d] [e], one
    step apart — a<->b and c<->d both ways, each run -> the next; a and e (two steps) share no
    rule. Raw: a: b 1, c 1, d 1; b: a 1, c 1, d 1; c: d 1, e 1; d: c 1, e 1. All-pairs in one
    group grew as its size squared (10k events in one second took 7 GB)."""
    data = sequences([("u", x, 1) for x in "abcde"])
    got = rules(create("transitions", steps=1).fit(data), data)
    third, half = 1 / 3, 1 / 2
    assert got == pytest.approx(
        {
            ("a", "b"): third, ("a", "c"): third, ("a", "d"): third,
            ("b", "a"): third, ("b", "c"): third, ("b", "d"): third,
            ("c", "d"): half, ("c", "e"): half,
            ("d", "c"): half, ("d", "e"): half,
        }
    )  # fmt: skip


def after(model: Transitions, data: Interactions, user: str, latest: list[str]) -> dict[str, float]:
    """``history_after`` for one user and items met since training (newest first), by name."""
    names = data.items.to_external(np.arange(data.n_items))
    rows = np.zeros(len(latest), np.int64)
    fresh = newest_first(1, data.n_items, rows, data.items.to_index(latest))
    row = model.history_after(data.users.to_index([user]), fresh).toarray().ravel()
    return {n: w for n, w in zip(names, row.tolist(), strict=True) if w}


def test_items_met_since_training_come_first_and_push_the_history_back() -> None:
    # u: a b a c (c latest). history 4, one recent item d: d step 0 (1), c 1 (1/2), a 2 (1/3),
    # b 3 (1/4), the first a at 4 falls out. Two recent items e, d: d, e (1, 1/2), c 1/3, a 1/4
    data = sequences([("u", "a", 1), ("u", "b", 2), ("u", "a", 3), ("u", "c", 4),
                      ("v", "d", 1), ("v", "e", 2)])  # fmt: skip
    model = create("transitions", history=4).fit(data)
    assert isinstance(model, Transitions)
    assert after(model, data, "u", ["d"]) == pytest.approx(
        {"d": 1.0, "c": 0.5, "a": 1 / 3, "b": 0.25}
    )
    assert after(model, data, "u", ["e", "d"]) == pytest.approx(
        {"e": 1.0, "d": 0.5, "c": 1 / 3, "a": 0.25}
    )
    # a recent item also in the history adds both weights: c 1 + 1/2
    assert after(model, data, "u", ["c"]) == pytest.approx({"c": 1.5, "a": 1 / 3, "b": 0.25})
    # nothing since training: the training-time weights themselves
    assert after(model, data, "u", []) == pytest.approx({"a": 0.75, "b": 1 / 3, "c": 1.0})


def test_a_release_written_before_the_steps_loads_and_scores_from_training(tmp_path) -> None:  # type: ignore[no-untyped-def]
    model = create("transitions", steps=2, history=2).fit(DATA)
    model.save(tmp_path / "m")
    again = Transitions.load(tmp_path / "m")
    assert again.follows_latest
    assert after(again, DATA, "u2", ["b"]) == after(model, DATA, "u2", ["b"])
    for old in (tmp_path / "m" / "arrays").glob("user_steps_*"):
        old.unlink()  # as a release saved before ``user_steps_`` existed
    older = Transitions.load(tmp_path / "m")
    assert not older.follows_latest
    users = np.arange(DATA.n_users)
    assert np.array_equal(model.recommend(users, 3).ids, older.recommend(users, 3).ids)


def test_a_source_answers_users_with_items_since_training_from_their_history_after() -> None:
    """``ModelSource`` over transitions: a known user with items met since training proposes the
    best of ``history_after``'s row times the rules (float32, added in the row's stored order),
    the exclusions left out but the history's own items kept (``drop_own=False``), best first,
    ties by item, ranks 1, 2, … — read here off the dense rule matrix, one user at a time."""
    rng = np.random.default_rng(3)
    events = [(f"u{u}", f"i{rng.integers(0, 12)}", int(s)) for u in range(6) for s in range(9)]
    data = sequences(events)
    model = create("transitions", history=5).fit(data)
    assert isinstance(model, Transitions)
    n, n_items = 6, data.n_items
    users = data.users.to_index([f"u{u}" for u in range(n)])
    latest_rows = np.repeat(np.arange(n), 2)
    latest_cols = rng.integers(0, n_items, 2 * n)
    latest = newest_first(n, n_items, latest_rows, latest_cols)
    gone = rng.integers(0, n_items, (n, 3))
    exclude = sparse.csr_array(
        (np.ones(3 * n, np.float32), (np.repeat(np.arange(n), 3), gone.ravel())),
        shape=(n, n_items),
    )
    exclude.sum_duplicates()
    recent = sparse.csr_array((n, n_items), dtype=np.float32)
    queries = Queries(users, recent, exclude, tuple({} for _ in range(n)), latest=latest)
    got = ModelSource("next", model).retrieve(queries, 4)
    dense = model.association_.toarray().astype(np.float32)
    for q in range(n):
        row = model.history_after(users[q : q + 1], latest[[q]])
        total, reached = np.zeros(n_items, np.float32), np.zeros(n_items, bool)
        for item, weight in zip(row.indices, row.data, strict=True):
            total += np.float32(weight) * dense[item]
            reached |= dense[item] != 0
        total[gone[q]] = -np.inf
        order = np.argsort(-total, kind="stable")
        order = order[reached[order] & np.isfinite(total[order]) & (total[order] != 0)][:4]
        mine = got.query == q
        assert got.items[mine].tolist() == order.tolist()
        assert got.scores[mine].view(np.int32).tolist() == total[order].view(np.int32).tolist()
        assert got.ranks[mine].tolist() == list(range(1, len(order) + 1))
    assert len(got.items) > 0


def test_data_whose_every_event_weighs_zero_or_less_fits_with_no_rules() -> None:
    # ratings of 0 and -1 only: no positive event, so no sequence (issue #15: an IndexError)
    data = Interactions.from_events(
        pd.DataFrame(
            {
                "event_id": ["e0", "e1", "e2"],
                "user_id": ["u1", "u1", "u2"],
                "item_id": ["a", "b", "a"],
                "event_type": "rating",
                "value": [0.0, -1.0, 0.0],
                "session_id": None,
                "context": None,
                "ts": np.array([1, 2, 3]) * 1_000_000 + 1_700_000_000_000_000,
            }
        ),
        EventSettings().weights,
    )
    indptr, group, items = timed_sequences(data, cap=11)
    assert indptr.tolist() == [0, 0, 0] and len(group) == len(items) == 0
    model = create("transitions").fit(data)
    assert isinstance(model, Transitions) and rules(model, data) == {}
