"""Release format 2 (arrays as ``.npy`` files, served memory-mapped and read-only) and format 1
(``.npz`` archives), which releases published before the upgrade still use."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsmith.array_files import load_arrays, read_arrays, save_arrays
from recsmith.bundle import FORMAT_VERSION, ModelBundle
from recsmith.config import EventSettings
from recsmith.errors import ValidationError
from recsmith.events.schema import Item
from recsmith.features.interactions import Interactions
from recsmith.models.registry import create
from recsmith.pipeline.artifact import load_artifact, save_pipeline, train_pipeline
from recsmith.pipeline.config import PipelineConfig
from recsmith.pipeline.runtime import Pipeline
from recsmith.testing.format1 import downgrade_to_format1

USERS = ["u0001", "u0002", "u0040", "nobody"]
RECENT = [[], [], ["i00003"], ["i00001"]]


@pytest.fixture(scope="module")
def pipeline(config: PipelineConfig, events: pd.DataFrame, items: list[Item]) -> Pipeline:
    return train_pipeline(config, events, dict(EventSettings().weights), items=items)


def _lists(release: Pipeline | ModelBundle) -> list[tuple[list[str], list[float]]]:
    answer = release.answer(USERS, 8, recent=RECENT)
    return [
        (list(ids), [round(float(s), 5) for s in scores])
        for ids, scores in zip(answer.lists.item_ids, answer.lists.scores, strict=True)
    ]


def _mapped(array: np.ndarray) -> bool:
    """True when ``array`` is a read-only view of a file mapping (not a private copy)."""
    while isinstance(array, np.ndarray) and not isinstance(array, np.memmap):
        array = array.base
    return isinstance(array, np.memmap)


def test_a_format2_pipeline_serves_from_read_only_maps(pipeline: Pipeline, tmp_path: Path) -> None:
    save_pipeline(pipeline, tmp_path / "p")
    assert not list((tmp_path / "p").rglob("*.npz"))
    assert json.loads((tmp_path / "p" / "manifest.json").read_text())["format_version"] == 2
    loaded = load_artifact(tmp_path / "p")
    assert isinstance(loaded, Pipeline)
    seen = loaded.bundle.seen
    # the canonical flag is computed at load (one pass over every entry), not by the first
    # request: held before any, and true (each row's columns strictly increasing)
    for matrix in (seen, loaded.recent):
        rows = np.arange(matrix.shape[0]).repeat(np.diff(matrix.indptr))
        keys = rows * matrix.shape[1] + matrix.indices
        assert matrix.__dict__["_has_canonical_format"] is bool(np.all(np.diff(keys) > 0))
        assert matrix.__dict__["_has_canonical_format"]
    users = loaded.bundle.users.to_array()  # the ids too: looked up over the maps, not copied
    for array in (seen.data, seen.indices, seen.indptr, loaded.recent.indices, users):
        assert _mapped(array) and not array.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        seen.data[0] = 1.0  # nothing can write into the release on disk
    assert _lists(loaded) == _lists(pipeline)


def test_a_format1_pipeline_still_loads_and_answers_the_same(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    save_pipeline(pipeline, tmp_path / "old")
    downgrade_to_format1(tmp_path / "old")
    assert (tmp_path / "old" / "pipeline.npz").is_file()
    assert (tmp_path / "old" / "model" / "model.npz").is_file()
    assert not list((tmp_path / "old").rglob("*.npy"))
    old = load_artifact(tmp_path / "old")
    assert isinstance(old, Pipeline) and old.version == pipeline.version
    assert not _mapped(old.bundle.seen.data)  # an archive is read into memory, as before
    assert _lists(old) == _lists(pipeline)
    # saved again, a format-1 release becomes format 2 and still answers the same
    save_pipeline(old, tmp_path / "new")
    manifest = json.loads((tmp_path / "new" / "manifest.json").read_text())
    assert manifest["format_version"] == FORMAT_VERSION == 2
    assert _lists(load_artifact(tmp_path / "new")) == _lists(pipeline)


@pytest.mark.parametrize("model", ["ials", "itemknn", "cooccurrence", "ease", "userknn"])
def test_a_format1_model_loads_and_answers_the_same(
    model: str, events: pd.DataFrame, tmp_path: Path
) -> None:
    data = Interactions.from_events(events, EventSettings().weights)
    bundle = ModelBundle.train(data, create(model))
    bundle.save(tmp_path / "new")
    mapped = ModelBundle.load(tmp_path / "new")
    bundle.save(tmp_path / "old")
    downgrade_to_format1(tmp_path / "old")
    old = ModelBundle.load(tmp_path / "old")
    assert _lists(mapped) == _lists(old) == _lists(bundle)
    similar = bundle.similar_items("i00003", 5)
    for loaded in (mapped, old):
        got = loaded.similar_items("i00003", 5)
        assert list(got[0]) == list(similar[0])
        np.testing.assert_allclose(got[1], similar[1], rtol=1e-5)


def test_an_unknown_format_is_refused_naming_it(pipeline: Pipeline, tmp_path: Path) -> None:
    save_pipeline(pipeline, tmp_path / "p")
    manifest = tmp_path / "p" / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"format_version": 2', '"format_version": 3'))
    with pytest.raises(ValidationError, match="unsupported model format 3"):
        load_artifact(tmp_path / "p")


def test_array_files_round_trip_every_shape_and_refuse_bad_names(tmp_path: Path) -> None:
    arrays = {
        "empty": np.zeros(0, np.float32),
        "scalar": np.array(7, np.int64),
        "ids": np.array(["0739079891", "é"]),
        "matrix.data": np.arange(12, dtype=np.float32).reshape(3, 4),
        "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
    }
    save_arrays(tmp_path / "a", arrays)
    back = load_arrays(tmp_path / "a")
    assert sorted(back) == sorted(arrays)
    for name, value in arrays.items():
        np.testing.assert_array_equal(back[name], value)
        assert back[name].dtype == value.dtype and type(back[name]) is np.ndarray
    with pytest.raises(ValueError, match="cannot be a file name"):
        save_arrays(tmp_path / "b", {"../escape": np.zeros(1)})
    with pytest.raises(FileNotFoundError, match=r"No such file .*nothing.npz.*nothing'"):
        read_arrays(tmp_path / "nothing", tmp_path / "nothing.npz")


def test_only_the_model_answering_similar_writes_unit_vectors(
    events: pd.DataFrame, items: list[Item], tmp_path: Path
) -> None:
    """``/similar`` is the primary model's: a second factor model, a retrieval source, writes
    no unit item vectors (73 MiB at 300k × 64, never read), while the trending source keeps its
    order (it ranks candidates and answers ``/trending``). The loaded pipeline answers alike."""
    factors = {"model": "ials", "quota": 20, "params": {"factors": 8, "iterations": 3}}
    config = PipelineConfig.model_validate(
        {
            "retrieval": {
                "sources": [
                    {"name": "als", **factors},
                    {"name": "als2", **factors},
                    {"name": "trending", "model": "trending", "quota": 10},
                ]
            },
            "ranking": {"enabled": False},
        }
    )
    trained = train_pipeline(config, events, dict(EventSettings().weights), items=items)
    save_pipeline(trained, tmp_path / "p")
    release = tmp_path / "p"
    derived = {p.relative_to(release).as_posix() for p in release.rglob("derived/*")}
    assert derived == {
        "model/derived/unit_items.v1.npy",
        "fallback/derived/order.v1.npy",
        "fallback/derived/positions.v1.npy",
        "sources/trending/derived/order.v1.npy",
        "sources/trending/derived/positions.v1.npy",
    }
    loaded = load_artifact(tmp_path / "p")
    assert isinstance(loaded, Pipeline)
    item = str(trained.bundle.items.to_array()[0])
    assert loaded.similar_items(item, 5)[0].tolist() == trained.similar_items(item, 5)[0].tolist()
    assert _lists(loaded) == _lists(trained)
