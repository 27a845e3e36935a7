"""What serving derives from a model's fitted arrays travels in its release (issue #19).

``Recommender.save`` writes each ``derivations`` array to ``derived/``; ``load`` maps it, so the
workers serving a release read one copy where each derived its own (the unit item vectors of a
300k-item model: 73 MiB per worker). Each file is named with its derivation's version, and one
of another version is derived afresh. The files must hold what the model would derive (checked
against vectors normalised and counts sorted in the test), the loaded model must answer from
them, and a release without them — written before, or of format 1 — must load and answer the
same lists as before.
"""

from pathlib import Path

import numpy as np
import pytest

from recsmith.models.als import ImplicitALS
from recsmith.models.popularity import Popular, Trending
from recsmith.testing.format1 import downgrade_to_format1


def _als(rng: np.random.Generator, n_items: int = 3000) -> ImplicitALS:
    items = rng.normal(size=(n_items, 8)).astype(np.float32)
    items[5] = 0  # an item nobody interacted with: a zero vector stays zero
    return ImplicitALS.from_arrays(
        ImplicitALS.Config(factors=8),
        {"user_factors_": np.ones((2, 8), np.float32), "item_factors_": items},
    )


def test_a_saved_factor_model_carries_its_unit_item_vectors(tmp_path: Path) -> None:
    model = _als(np.random.default_rng(0))
    model.save(tmp_path / "m")
    unit = np.load(tmp_path / "m" / "derived" / "unit_items.v1.npy")
    items = model.item_factors_.astype(np.float64)
    norms = np.sqrt((items**2).sum(axis=1))
    want = np.divide(items, norms[:, None], out=np.zeros_like(items), where=norms[:, None] > 0)
    assert unit.dtype == np.float32
    np.testing.assert_allclose(unit, want, atol=1e-6)


def test_a_loaded_model_answers_from_the_release_copy(tmp_path: Path) -> None:
    """The release's vectors are what the loaded model ranks by: written over with another
    model's vectors of the same shape, the loaded model lists that model's neighbours."""
    rng = np.random.default_rng(1)
    model, other = _als(rng), _als(rng)
    model.save(tmp_path / "m")
    other.save(tmp_path / "o")
    (tmp_path / "o" / "derived" / "unit_items.v1.npy").replace(
        tmp_path / "m" / "derived" / "unit_items.v1.npy"
    )
    loaded = ImplicitALS.load(tmp_path / "m")
    asked = np.array([0, 7, 2999])
    np.testing.assert_array_equal(
        loaded.similar_items(asked, 10).ids, other.similar_items(asked, 10).ids
    )
    assert not np.array_equal(
        loaded.similar_items(asked, 10).ids, model.similar_items(asked, 10).ids
    )


@pytest.mark.parametrize("file", ["unit_items.npy", "unit_items.v2.npy"])
def test_a_derived_file_of_another_version_is_derived_afresh(tmp_path: Path, file: str) -> None:
    """The file's version says which ``make`` wrote it: one written by another (a release from
    before versions, or from a later ``unit_rows``) is never answered from. Here it holds
    another model's vectors, so answering from it would list that model's neighbours."""
    rng = np.random.default_rng(4)
    model, other = _als(rng), _als(rng)
    model.save(tmp_path / "m")
    other.save(tmp_path / "o")
    (tmp_path / "m" / "derived" / "unit_items.v1.npy").unlink()
    (tmp_path / "o" / "derived" / "unit_items.v1.npy").replace(tmp_path / "m" / "derived" / file)
    loaded = ImplicitALS.load(tmp_path / "m")
    asked = np.array([0, 7, 2999])
    got, want = loaded.similar_items(asked, 10), model.similar_items(asked, 10)
    np.testing.assert_array_equal(got.ids, want.ids)
    np.testing.assert_array_equal(got.scores, want.scores)


def test_a_model_that_answers_no_similar_lists_writes_no_unit_vectors(tmp_path: Path) -> None:
    """``save(answers_similar=False)``: a pipeline's retrieval sources; derived on demand."""
    model = _als(np.random.default_rng(5))
    model.save(tmp_path / "m", answers_similar=False)
    assert not (tmp_path / "m" / "derived").exists()
    asked = np.array([0, 2999])
    np.testing.assert_array_equal(
        ImplicitALS.load(tmp_path / "m").similar_items(asked, 10).ids,
        model.similar_items(asked, 10).ids,
    )


@pytest.mark.parametrize("release", ["without derived/", "format 1", "derived/ of another shape"])
def test_a_release_without_usable_derived_arrays_answers_as_before(
    tmp_path: Path, release: str
) -> None:
    rng = np.random.default_rng(2)
    model = _als(rng)
    popular = Popular.from_arrays(
        Popular.Config(), {"item_scores_": rng.integers(0, 4, 3000).astype(np.float32)}
    )
    model.save(tmp_path / "m")
    popular.save(tmp_path / "p")
    for name in ("m", "p"):
        derived = tmp_path / name / "derived"
        if release == "without derived/":
            for file in derived.iterdir():
                file.unlink()
            derived.rmdir()
        elif release == "derived/ of another shape":
            for file in derived.iterdir():
                np.save(file, np.load(file)[:-1])
    if release == "format 1":
        (tmp_path / "manifest.json").write_text('{"format_version": 2}')
        downgrade_to_format1(tmp_path)
        assert not list(tmp_path.rglob("derived"))
    asked = np.array([0, 5, 11, 2999])  # 5: the zero vector, every neighbour tied at 0
    got = ImplicitALS.load(tmp_path / "m").similar_items(asked, 25)
    want = model.similar_items(asked, 25)
    np.testing.assert_array_equal(got.ids, want.ids)
    np.testing.assert_array_equal(got.scores, want.scores)
    got_popular = Popular.load(tmp_path / "p").recommend(np.zeros(3, np.int64), 40)
    want_popular = popular.recommend(np.zeros(3, np.int64), 40)
    np.testing.assert_array_equal(got_popular.ids, want_popular.ids)


def test_popularity_releases_carry_its_order_and_each_items_place(tmp_path: Path) -> None:
    """Hand-checked: counts 3, 7, 3, 0, 7 order as 1, 4, 0, 2, 3 (ties by lower index), so item
    0 is third (position 2); the loaded model lists from the mapped order."""
    model = Trending.from_arrays(
        Trending.Config(), {"item_scores_": np.array([3, 7, 3, 0, 7], np.float32)}
    )
    model.save(tmp_path / "t")
    np.testing.assert_array_equal(np.load(tmp_path / "t/derived/order.v1.npy"), [1, 4, 0, 2, 3])
    np.testing.assert_array_equal(np.load(tmp_path / "t/derived/positions.v1.npy"), [2, 0, 3, 4, 1])
    loaded = Trending.load(tmp_path / "t")
    np.testing.assert_array_equal(loaded.recommend(np.zeros(1, np.int64), 4).ids, [[1, 4, 0, 2]])


def test_a_refit_after_loading_derives_from_the_new_fit(tmp_path: Path) -> None:
    """The release's vectors belong to the factors it was written with: a model given new
    factors (a refit) ranks by those, not by the mapped file."""
    rng = np.random.default_rng(3)
    model = _als(rng)
    model.save(tmp_path / "m")
    loaded = ImplicitALS.load(tmp_path / "m")
    loaded.item_factors_ = model.item_factors_[::-1].copy()  # item i is now the old 2999 - i
    np.testing.assert_array_equal(
        loaded.similar_items(np.array([2999]), 10).ids[0],
        2999 - model.similar_items(np.array([0]), 10).ids[0],
    )
