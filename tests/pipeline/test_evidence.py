"""Where each user's latest item holds too few hits to tell the sources apart, calibration also
holds out the items before it (pooled latest-item folds: shorter pasts, longer-history users)
and says when even that leaves its evidence weak (BENCHMARKS §65). The folds are checked against
splits worked out by hand; the choice against a constructed case whose right answer, and every
score, is known by hand; pooled folds count each user once (their mean over the folds)."""

from __future__ import annotations

import numpy as np
import pytest
from test_calibration import WEIGHTS, config, frame, popularity_case

from recsmith.evaluation.significance import bootstrap_ci
from recsmith.features.interactions import Interactions
from recsmith.pipeline import calibration as calibration_module
from recsmith.pipeline.calibration import (
    ByUser,
    best_single_hits,
    calibrate,
    calibration_summary,
)
from recsmith.pipeline.item_attributes import ItemAttributes
from recsmith.pipeline.robust_choice import RESAMPLES, Tried, deciding
from recsmith.pipeline.validation import LATEST_ITEM, latest_item_folds

POOLED = f"{LATEST_ITEM}, pooled with the 2 before it"


def held(full: Interactions, fold: object) -> list[tuple[str, str]]:
    """(user, item) pairs a fold holds out, as external ids (its truth is in its past's own item
    numbering, ``Validation.items``)."""
    users = full.users.to_external(fold.users)  # type: ignore[attr-defined]
    items = fold.past.items.to_external(fold.truth.indices)  # type: ignore[attr-defined]
    return list(zip(users, items, strict=True))


def past_of(full: Interactions, fold: object) -> dict[str, set[str]]:
    """Each user's items in a fold's past, as external ids (users without any left out)."""
    m = fold.past.matrix  # type: ignore[attr-defined]
    return {
        full.users.to_external([u])[0]: set(
            fold.past.items.to_external(m.indices[m.indptr[u] : m.indptr[u + 1]])  # type: ignore[attr-defined]
        )
        for u in range(m.shape[0])
        if m.indptr[u + 1] > m.indptr[u]
    }


def test_latest_item_folds_hold_out_each_users_earlier_items_from_the_events_before_them() -> None:
    """u0 takes 10, 11, 12, 13; u1 takes 20, 21, 20 again; u2 only 30. Worked out by hand:
    fold 1 holds u0's 13 (u1's latest 20 is a repeat: not new to them); fold 2 holds u0's 12 and
    u1's 21, each user's later events set aside; fold 3 holds u0's 11 (u1 has no past left
    before its first event). u2, with one item, is never held out and stays in every past."""
    rows = [(0, 10), (0, 11), (0, 12), (0, 13), (1, 20), (1, 21), (1, 20), (2, 30)]
    full = Interactions.from_events(frame(rows), WEIGHTS)
    folds = latest_item_folds(full, max_users=5000, seed=0, folds=3)
    assert [held(full, f) for f in folds] == [
        [("u0000", "i0013")],
        [("u0000", "i0012"), ("u0001", "i0021")],
        [("u0000", "i0011")],
    ]
    assert [past_of(full, f) for f in folds] == [
        {"u0000": {"i0010", "i0011", "i0012"}, "u0001": {"i0020", "i0021"}, "u0002": {"i0030"}},
        {"u0000": {"i0010", "i0011"}, "u0001": {"i0020"}, "u0002": {"i0030"}},
        {"u0000": {"i0010"}, "u0002": {"i0030"}},
    ]
    assert {f.protocol for f in folds} == {POOLED}
    (one,) = latest_item_folds(full, max_users=5000, seed=0, folds=1)
    assert one.protocol == LATEST_ITEM and held(full, one) == [("u0000", "i0013")]


def test_a_latest_item_holding_enough_users_is_not_pooled() -> None:
    """1,000 users with two items each: the latest item already holds ``POOL_USERS``, so no
    earlier fold is fitted (each costs a fit of every source)."""
    rows = [(u, i) for u in range(1000) for i in (2 * u, 2 * u + 1)]
    full = Interactions.from_events(frame(rows), WEIGHTS)
    (only,) = latest_item_folds(full, max_users=5000, seed=0, folds=3)
    assert only.protocol == LATEST_ITEM and len(only.users) == 1000


def chains() -> Interactions:
    """40 chains of three items (a, b, c); user u follows chain u % 40, then takes items no one
    else ever takes: one (type A, even u // 40) or two (type B). Worked out by hand: each user's
    latest item is such an item, a hit for no source; one item earlier, type A users hold c
    after a, b, and the type B users' pasts (a, b, c) teach b → c; two items earlier, type A
    users hold b after a, and type B pasts (a, b) teach a → b. Item-kNN from the latest item
    ranks that next item first: NDCG@10 1 for the 240 type A users of folds 2 and 3, 0 for the
    rest — 240 / 720 = 1/3 pooled; per user, 2/3 for each of the 120 type A users and 0 for the
    120 type B users (mean 1/3 again, over 240 users). Popularity never reaches it: the 80
    items of 6 users each (a and b of every chain in fold 2, a in fold 3) fill its top 10
    before any of 3 users."""
    rows = []
    for u in range(240):
        c, type_b = u % 40, (u // 40) % 2
        rows += [(u, 3 * c), (u, 3 * c + 1), (u, 3 * c + 2), (u, 1000 + u)]
        rows += [(u, 2000 + u)] if type_b else []
    return Interactions.from_events(frame(rows), WEIGHTS)


SOURCES = [
    {"name": "knn", "model": "itemknn", "use": "recent", "quota": 20, "params": {"neighbors": 50}},
]


def test_the_latest_item_alone_decides_nothing_and_calibration_says_its_evidence_is_weak() -> None:
    """On the latest items alone every source scores 0: nothing tells them apart, so the
    popularity calibration added (first on ties) is left out and the file's own item-kNN ships —
    the source the pooled folds below show right (1/3 against popularity's 0) — and the report
    and the train line say the evidence was weak."""
    full = chains()
    report = calibrate(config(SOURCES), full, ItemAttributes.from_items([], full.items)).report
    assert [t["protocols"][0]["ndcg@10"] for t in report["tried"]] == [0.0, 0.0, 0.0]
    assert report["chosen"] == "knn"
    assert "popularity's best mean left out: no protocol decides" in report["reason"]
    assert report["evidence"].startswith("weak: no protocol tells the single sources apart")
    assert f"{LATEST_ITEM}: 0 of 240 users" in report["evidence"]
    assert "; EVIDENCE WEAK: no protocol tells" in calibration_summary(report)


def test_pooled_folds_find_the_evidence_and_the_source_that_knows_the_next_item_ships() -> None:
    """The same events with the two items before each user's latest pooled in: item-kNN scores
    the 1/3 worked out by hand, popularity 0, the protocol decides, item-kNN ships, and nothing
    is said to be weak."""
    full = chains()
    cal = calibrate(
        config(SOURCES, latest_folds=3), full, ItemAttributes.from_items([], full.items)
    )
    report = cal.report
    (protocol,) = report["protocols"]
    assert protocol["protocol"] == POOLED and protocol["validation_users"] == 240
    assert protocol["held_out"] == 720
    assert protocol["folds"] == 3 and protocol["decides"]
    assert report["pooled_folds"].startswith("nothing decided on each user's latest item alone")
    scores = {t["name"]: t["protocols"][0]["ndcg@10"] for t in report["tried"]}
    assert scores["popularity"] == 0.0
    assert scores["knn"] == pytest.approx(1 / 3, abs=1e-5)
    # the interval is over the 240 users' means (hand-made, in user order), not 720 rows
    per_user = np.array([2 / 3 if (u // 40) % 2 == 0 else 0.0 for u in range(240)])
    low, high = bootstrap_ci(per_user, n_resamples=RESAMPLES, seed=0)
    knn = next(t for t in report["tried"] if t["name"] == "knn")
    assert knn["protocols"][0]["interval"] == [round(low, 5), round(high, 5)]
    assert protocol["best_single_hits"] == 120
    assert report["chosen"] in {"knn", "fused"}
    assert [s.weight for s in cal.config.retrieval.sources if s.name == "knn"] == [1.0]
    assert report["evidence"] == f"decided on {POOLED}"
    assert "EVIDENCE WEAK" not in calibration_summary(report)
    assert np.isclose(scores[report["chosen"]], 1 / 3, atol=1e-5)


def test_where_the_latest_item_decides_no_fold_is_added() -> None:
    """Every user's latest item is one of five hits none of them had (``popularity_case``):
    popularity tells itself apart there, so no earlier item is held out, whatever
    ``latest_folds`` allows."""
    full = Interactions.from_events(popularity_case(), WEIGHTS)
    cfg = config([{"name": "ease", "model": "ease", "quota": 50}], latest_folds=3)
    report = calibrate(cfg, full, ItemAttributes.from_items([], full.items)).report
    assert [(p["protocol"], p["decides"]) for p in report["protocols"]] == [(LATEST_ITEM, True)]
    assert "pooled_folds" not in report and report["evidence"] == f"decided on {LATEST_ITEM}"


def test_pooled_splits_score_each_user_once_as_their_mean_over_the_splits_that_hold_them() -> None:
    """Folds holding users (0, 1, 2), (1, 2), (2): worked out by hand, user 0 keeps its score,
    user 1 the mean of two, user 2 of three; one row per user, in user order."""
    by_user = ByUser([np.array([0, 1, 2]), np.array([1, 2]), np.array([2])])
    out = by_user([np.array([0.5, 1.0, 0.0]), np.array([0.0, 0.3]), np.array([0.9])])
    assert out == pytest.approx([0.5, 0.5, 0.4])


def stacked(hits: np.ndarray, folds: int) -> tuple[Tried, Tried]:
    """Popularity at 0 and a source scoring ``hits`` on the same users in each of ``folds``
    folds, as calibration reads them (``ByUser``)."""
    users = np.arange(len(hits))
    by_user = ByUser([users] * folds)
    source = by_user([hits] * folds)
    zero = by_user([np.zeros(len(hits))] * folds)
    cfg = config(SOURCES)
    return Tried("popularity", cfg, (zero,)), Tried("knn", cfg, (source,))


def test_the_same_users_in_three_folds_are_no_more_evidence_than_one_fold() -> None:
    """200 users, 3 of them hit (0.3 each): the bootstrap draws no hit in ~5 % of resamples
    ((1 - 3/200)^200), so one fold's interval touches 0 and does not decide. The same users in
    three folds with the same scores are the same evidence, and must not decide either; their
    rows stacked three times (600 rows, 9 hits) would."""
    hits = np.zeros(200)
    hits[[3, 50, 120]] = 0.3
    _, one = deciding(stacked(hits, 1), seed=0)
    _, three = deciding(stacked(hits, 3), seed=0)
    assert not one[0]["decides"] and not three[0]["decides"]
    rows = np.tile(hits, 3)
    assert bootstrap_ci(rows, n_resamples=RESAMPLES, seed=0)[0] > 0  # what concatenation said


def test_the_hits_reported_are_the_best_mean_sources_not_the_most_any_source_has() -> None:
    """Source a: one user at 1.0 (mean 0.25, 1 hit); source b: two users at 0.1 (mean 0.05,
    2 hits). The best single source is a, and its evidence is 1 hit."""
    cfg = config(SOURCES)
    a = Tried("a", cfg, (np.array([1.0, 0.0, 0.0, 0.0]),))
    b = Tried("b", cfg, (np.array([0.1, 0.1, 0.0, 0.0]),))
    assert best_single_hits([b, a], 0) == 1


def test_a_latest_item_with_too_few_users_is_pooled_before_calibration_gives_up() -> None:
    """10 users whose latest item is new, 15 whose latest repeats an earlier one (not held out)
    but whose item before it is new: the latest item alone holds 10 users (< 20), the pooled
    folds 25, so calibration scores them rather than serving as configured. With 5 such users
    the pool holds 15: still too few, so nothing is decided and nothing is said to be pooled."""

    def case(repeaters: int) -> Interactions:
        rows = [(u, i) for u in range(10) for i in (100 + u % 3, 200 + u % 3)]
        rows += [
            (u, i)
            for u in range(10, 10 + repeaters)
            for i in (100 + u % 3, 200 + u % 3, 100 + u % 3)
        ]
        return Interactions.from_events(frame(rows), WEIGHTS)

    full = case(15)
    report = calibrate(
        config(SOURCES, latest_folds=3), full, ItemAttributes.from_items([], full.items)
    ).report
    (protocol,) = report["protocols"]
    assert protocol["protocol"] == f"{LATEST_ITEM}, pooled with the 1 before it"
    assert protocol["validation_users"] == 25 and protocol["held_out"] == 25
    assert report["pooled_folds"] == "each user's latest item alone holds 10 users < 20"
    assert "tried" in report
    small = case(5)
    report = calibrate(
        config(SOURCES, latest_folds=3), small, ItemAttributes.from_items([], small.items)
    ).report
    assert "pooled_folds" not in report and "tried" not in report
    assert report["protocols"] == [{"protocol": LATEST_ITEM, "validation_users": 10}]
    assert report["reason"] == "10 validation users < 20: nothing decided"


def test_sources_fitted_on_the_first_look_are_not_fitted_again_for_the_pooled_folds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every fit calibration makes, counted by (the past's events, the source): the first look's
    fold is the pooled protocol's first fold, so each source is fitted once on each distinct
    past — three pasts (the three folds) — and never twice on the same one."""
    fits: list[tuple[bytes, str]] = []
    real = calibration_module.fit_models

    def counted(config, past):  # type: ignore[no-untyped-def]
        m = past.matrix
        fits.append((m.indptr.tobytes() + m.indices.tobytes(), config.model_dump_json()))
        return real(config, past)

    monkeypatch.setattr(calibration_module, "fit_models", counted)
    full = chains()
    calibrate(config(SOURCES, latest_folds=3), full, ItemAttributes.from_items([], full.items))
    assert len({past for past, _ in fits}) == 3
    assert len(fits) == len(set(fits))


def test_folds_are_added_until_pool_users_distinct_users_not_held_out_rows() -> None:
    """600 users with four new items each: every fold holds the same 600 users. Two folds hold
    1,200 rows but 600 users (< 1,000), so all three folds are pooled."""
    rows = [(u, i) for u in range(600) for i in (4 * u, 4 * u + 1, 4 * u + 2, 4 * u + 3)]
    full = Interactions.from_events(frame(rows), WEIGHTS)
    folds = latest_item_folds(full, max_users=5000, seed=0, folds=3)
    assert [len(f.users) for f in folds] == [600, 600, 600]
