"""EASE's ``recency`` at request time: a history scored from its items (a visitor's, in serving's
order) is weighed by the items' places as a known user's items are at training. Oracle: places
and weights worked out by hand, times a plain EASE's weights (another fit: the solve is not under
test), ranked by numpy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from recsmith.bundle import ModelBundle
from recsmith.config import EventSettings
from recsmith.features.interactions import Interactions
from recsmith.models.ease import EASE
from recsmith.sparse_rows import newest_first
from recsmith.testing.recommender import view_events

WEIGHTS = EventSettings().weights
#: five items over four users, enough co-occurrence that a weighted row orders v and z otherwise
ROWS = [("a", "x", 1), ("a", "y", 2), ("a", "v", 3), ("b", "y", 1), ("b", "z", 2),
        ("b", "w", 3), ("c", "x", 1), ("c", "w", 2), ("c", "v", 3), ("d", "z", 1),
        ("d", "x", 2), ("d", "y", 3)]  # fmt: skip
SETTINGS = {"regularization": 0.5}
BETA, HALF = 2.0, 1.0


def fitted() -> tuple[Interactions, EASE, EASE]:
    data = Interactions.from_events(view_events(ROWS), WEIGHTS)
    model = EASE(**SETTINGS, recency=BETA, recency_half_places=HALF).fit(data)
    return data, model, EASE(**SETTINGS).fit(data)


def row(data: Interactions, weights: dict[str, float]) -> np.ndarray:
    """A dense history row with each item at its hand-given weight."""
    x = np.zeros(data.n_items)
    for item, w in weights.items():
        x[data.items.to_index([item])[0]] = w
    return x


def test_a_history_is_weighed_by_its_places_renumbered_over_its_items() -> None:
    """Places y 1, z 1 (one instant), u 2 (not in the history: leaves no gap), x 4 → x is 3rd;
    w has no place: it counts 1. 1 + 2 · 0.5 ** (place − 1): place 1 → 3, place 3 → 1.5."""
    data, model, plain = fitted()
    idx = {i: int(data.items.to_index([i])[0]) for i in "vwxyz"}
    history = sparse.csr_array(  # columns in no sorted order: the rows' order is not read
        (np.ones(4, np.float32), [idx["y"], idx["x"], idx["w"], idx["z"]], [0, 4]),
        shape=(1, data.n_items),
    )
    # places as ``newest_first`` stores them (canonical); v stands in for an item the history
    # lacks (an unknown or unliked one in serving)
    held = {"y": 1.0, "z": 1.0, "v": 2.0, "x": 4.0}
    cols = np.array([idx[i] for i in held])
    order = np.argsort(cols)
    places = sparse.csr_array(
        (np.array(list(held.values()), np.float32)[order], cols[order], [0, len(held)]),
        shape=(1, data.n_items),
    )
    want = row(data, {"y": 3.0, "z": 3.0, "x": 1.5, "w": 1.0}) @ plain.weights_
    np.testing.assert_allclose(model._score_places(history, places)[0], want, rtol=1e-5, atol=1e-6)
    # without places (no order known: offline) the history is a set, as plain EASE scores it
    np.testing.assert_array_equal(model._score_history(history), plain._score_history(history))


@pytest.mark.parametrize("recency", [0.0, 2.0])
def test_a_release_weighs_a_visitors_items_by_their_order_oldest_first(recency: float) -> None:
    """``recommend_for_items``' lists, oldest first: x, w, x again (its latest counts), then y —
    places y 1, x 2, w 3; weights 3, 2, 1.5. The list and its scores are numpy's ranking of the
    hand-weighted row (the plain row where recency is off), the visitor's own items left out."""
    data = Interactions.from_events(view_events(ROWS), WEIGHTS)
    plain = EASE(**SETTINGS).fit(data)
    bundle = ModelBundle.train(data, EASE(**SETTINGS, recency=recency, recency_half_places=HALF))
    listed = bundle.recommend_for_items([["x", "w", "x", "y"]], 5)
    by_place = {"y": 3.0, "x": 2.0, "w": 1.5} if recency else {"y": 1.0, "x": 1.0, "w": 1.0}
    scores = row(data, by_place) @ plain.weights_
    others = [i for i in ("v", "z") if i not in by_place]
    want = sorted(others, key=lambda i: -scores[data.items.to_index([i])[0]])
    assert list(listed.item_ids[0]) == want
    np.testing.assert_allclose(
        listed.scores[0], [scores[data.items.to_index([i])[0]] for i in want], rtol=1e-5
    )


def test_the_weights_change_the_visitors_order() -> None:
    """The order above differs from the unweighted one: a release ignoring the places fails the
    weighted case of the test before."""
    data = Interactions.from_events(view_events(ROWS), WEIGHTS)
    weighted = ModelBundle.train(data, EASE(**SETTINGS, recency=BETA, recency_half_places=HALF))
    unweighted = ModelBundle.train(data, EASE(**SETTINGS))
    history = [["x", "w", "x", "y"]]
    assert list(weighted.recommend_for_items(history, 5).item_ids[0]) != list(
        unweighted.recommend_for_items(history, 5).item_ids[0]
    )


def test_newest_first_lists_give_the_places_a_history_is_weighed_by() -> None:
    """The pipeline's ``Queries.latest`` (``newest_first``) of a visitor's recent items, newest
    first with one twice, scores as the hand-placed row: y 1, x 2 (its newer place), w 3."""
    data, model, plain = fitted()
    cols = data.items.to_index(["y", "x", "w", "x"])
    places = newest_first(1, data.n_items, np.zeros(4, np.int64), cols)
    history = sparse.csr_array(places > 0, dtype=np.float32)
    want = row(data, {"y": 3.0, "x": 2.0, "w": 1.5}) @ plain.weights_
    np.testing.assert_allclose(model._score_places(history, places)[0], want, rtol=1e-5, atol=1e-6)


def test_the_autoencoder_reads_the_plain_items_of_a_weighed_history() -> None:
    """With ``autoencoder`` 1: per row (x_w · B) / std + d / std, x_w the hand-weighted row (as
    in the first test) and d the model's Mult-DAE's centred logits of the plain 0/1 row (the
    network is fitted on plain rows); weighted logits must give other scores."""
    data = Interactions.from_events(view_events(ROWS), WEIGHTS)
    settings = {**SETTINGS, "autoencoder": 1.0, "autoencoder_hidden": 4}
    model = EASE(**settings, recency=BETA, recency_half_places=HALF).fit(data)
    plain = EASE(**SETTINGS).fit(data)
    cols = data.items.to_index(["y", "x", "w"])  # newest first: places 1, 2, 3
    places = newest_first(1, data.n_items, np.zeros(3, np.int64), cols)
    history = sparse.csr_array(places > 0, dtype=np.float32)
    weighted = row(data, {"y": 3.0, "x": 2.0, "w": 1.5})[None, :]

    def scaled(scores: np.ndarray) -> np.ndarray:
        return scores / scores.std(axis=1, keepdims=True)

    assert model.dae_ is not None
    logits = model.dae_.centred_logits(sparse.csr_array((weighted > 0).astype(np.float32)))
    want = scaled(weighted @ plain.weights_) + scaled(logits)
    got = model._score_places(history, places)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    wrong = model.dae_.centred_logits(sparse.csr_array(weighted.astype(np.float32)))
    assert not np.allclose(want, scaled(weighted @ plain.weights_) + scaled(wrong), atol=1e-3)
