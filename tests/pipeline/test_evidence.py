"""Where each user's latest item holds too few hits to tell the sources apart, calibration asks
the same question of the items before it (pooled latest-item folds) and says when even that
leaves its evidence weak (BENCHMARKS §65). The folds are checked against splits worked out by
hand; the choice against a constructed case whose right answer, and every score, is known by
hand."""

from __future__ import annotations

import numpy as np
import pytest
from test_calibration import WEIGHTS, config, frame, popularity_case

from recsmith.features.interactions import Interactions
from recsmith.pipeline.calibration import calibrate, calibration_summary
from recsmith.pipeline.item_attributes import ItemAttributes
from recsmith.pipeline.validation import LATEST_ITEM, latest_item_folds

POOLED = f"{LATEST_ITEM}, pooled with the 2 before it"


def held(full: Interactions, fold: object) -> list[tuple[str, str]]:
    """(user, item) pairs a fold holds out, as external ids."""
    users = full.users.to_external(fold.users)  # type: ignore[attr-defined]
    items = full.items.to_external(fold.truth.indices)  # type: ignore[attr-defined]
    return list(zip(users, items, strict=True))


def past_of(full: Interactions, fold: object) -> dict[str, set[str]]:
    """Each user's items in a fold's past, as external ids (users without any left out)."""
    m = fold.past.matrix  # type: ignore[attr-defined]
    return {
        full.users.to_external([u])[0]: set(
            full.items.to_external(m.indices[m.indptr[u] : m.indptr[u + 1]])
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
    rest — 240 / 720 = 1/3 pooled. Popularity never reaches it: the 80 items of 6 users each
    (a and b of every chain in fold 2, a in fold 3) fill its top 10 before any of 3 users."""
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
    """On the latest items alone every source scores 0: nothing tells them apart, popularity
    (the simplest, first on ties) ships, and the report and the train line say the evidence
    was weak."""
    full = chains()
    report = calibrate(config(SOURCES), full, ItemAttributes.from_items([], full.items)).report
    assert [t["protocols"][0]["ndcg@10"] for t in report["tried"]] == [0.0, 0.0, 0.0]
    assert report["chosen"] == "popularity"
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
    assert protocol["protocol"] == POOLED and protocol["validation_users"] == 720
    assert protocol["folds"] == 3 and protocol["decides"]
    assert report["pooled_folds"].startswith("nothing decided on each user's latest item alone")
    scores = {t["name"]: t["protocols"][0]["ndcg@10"] for t in report["tried"]}
    assert scores["popularity"] == 0.0
    assert scores["knn"] == pytest.approx(1 / 3, abs=1e-5)
    assert protocol["best_single_hits"] == 240
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
