"""The encoded models' ``/similar`` (SASRec, the two towers) from unit item vectors kept once
and written into the release (issue #19), as a factor model's: their neighbours must be those of
vectors normalised on the spot for each request (the code they replaced, written out here: the
two towers compare items without their bias slot), before and after a save and load."""

from pathlib import Path

import numpy as np
import pytest

from recsmith.config import EventSettings
from recsmith.features.interactions import Interactions
from recsmith.models.base import EncodedRecommender
from recsmith.models.sasrec import SASRec
from recsmith.models.two_tower import TwoTower
from recsmith.testing.recommender import view_events

pytest.importorskip("torch")


def _data() -> Interactions:
    rng = np.random.default_rng(0)
    rows = [
        (f"u{u:02d}", f"i{int(i):02d}", 1_700_000_000 + 10 * u + step)
        for u in range(30)
        for step, i in enumerate(rng.choice(40, size=6, replace=False))
    ]
    return Interactions.from_events(view_events(rows), EventSettings().weights)


def _on_the_spot(model: EncodedRecommender, asked: np.ndarray, k: int) -> np.ndarray:
    vectors = model.item_vectors_[:, :-1] if isinstance(model, TwoTower) else model.item_vectors_
    unit = vectors / (np.linalg.norm(vectors, axis=1) + 1e-12)[:, None]
    cosine = unit[asked] @ unit.T
    cosine[np.arange(len(asked)), asked] = -np.inf
    return np.argsort(-cosine, axis=1, kind="stable")[:, :k]


@pytest.mark.parametrize(
    "model",
    [
        SASRec(max_len=8, hidden=16, epochs=1, batch_size=16, num_threads=1),
        TwoTower(dim=8, epochs=1, batch_size=32, num_threads=1),
    ],
    ids=["sasrec", "two_tower"],
)
def test_neighbours_are_cosines_of_vectors_normalised_on_the_spot(
    model: EncodedRecommender, tmp_path: Path
) -> None:
    model.fit(_data())
    asked = np.arange(model.n_items)
    want = _on_the_spot(model, asked, 10)
    np.testing.assert_array_equal(model.similar_items(asked, 10).ids, want)
    model.save(tmp_path / "m")
    assert (tmp_path / "m" / "derived" / "unit_items.v1.npy").is_file()
    loaded = type(model).load(tmp_path / "m")
    assert not loaded.unit_items.of(loaded).flags.writeable  # the release's map, not derived
    np.testing.assert_array_equal(loaded.similar_items(asked, 10).ids, want)
    loaded.item_vectors_ = model.item_vectors_[::-1].copy()  # a refit: item i is the old n-1-i
    np.testing.assert_array_equal(
        loaded.similar_items(asked, 10).ids, _on_the_spot(loaded, asked, 10)
    )
