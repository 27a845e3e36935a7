"""Library adapters for ``benchmarks/peers.py``: recsmith, implicit, RecTools and LensKit.

Every adapter receives the same ``Prepared`` split (recsmith's train ``Interactions``, its
``GroundTruth`` and the internal indices of the evaluated users) and returns, for each evaluated
user, a top-k list of *recsmith internal item indices* (-1 = no item), the seen training items
excluded. The caller scores every list with the same recsmith metric code.

Each library is fed ``data.matrix`` (rows = ``data.users`` indices, columns = ``data.items``
indices) in its own format, so the integer ids every library sees ARE recsmith's indices and the
lists map back without a lookup table:

- implicit: ``csr_matrix(data.matrix)`` directly;
- RecTools: ``Dataset.construct`` of a (user index, item index, weight, datetime) frame;
- LensKit: ``from_interactions_df`` of a (user_id, item_id, rating, timestamp) frame with the full
  user / item index vocabularies.

A family's ``grid`` is the ordered list of configurations the tuner may try (the first is always the
library default); ``grid=None`` means the family is reported at its defaults only.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy import sparse

SEED = 42


@dataclass
class Family:
    """One model family of a library: its label, default params and tuning grid."""

    key: str
    label: str
    defaults: dict[str, Any] = field(default_factory=dict)
    grid: list[dict[str, Any]] | None = None  # params overriding ``defaults``; [0] = {} (defaults)
    dense: bool = False  # an item × item dense solve (EASE): skipped above --dense-max-items
    without_dense: Family | None = None  # what runs instead when ``dense`` is skipped

    def params(self, overrides: dict[str, Any]) -> dict[str, Any]:
        return {**self.defaults, **overrides}


@dataclass
class Outcome:
    """What a library produced for one (family, params) on one split."""

    recs: np.ndarray | None  # int64 [n_eval_users, k] recsmith item indices, -1 = none
    fit_seconds: float
    recommend_seconds: float
    result: Any = None  # recsmith's ModelResult (recsmith rows are scored by evaluate_model)
    note: str = ""


class Library:
    name: str = ""
    packages: tuple[str, ...] = ()
    families: ClassVar[dict[str, Family]] = {}

    def check(self) -> str | None:
        """None when the library imports, else the error text (the library is then skipped)."""
        return None

    def versions(self) -> dict[str, str]:
        out = {}
        for pkg in self.packages:
            try:
                out[pkg] = metadata.version(pkg)
            except metadata.PackageNotFoundError:
                out[pkg] = "not installed"
        return out

    def run(self, family: Family, params: dict[str, Any], p: Any, k: int) -> Outcome:
        raise NotImplementedError


def _fill(n_users: int, k: int, user_pos: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Long-format (row position, item) pairs, already ranked within each row → [n_users, k]."""
    recs = np.full((n_users, k), -1, dtype=np.int64)
    if len(user_pos) == 0:
        return recs
    order = np.argsort(user_pos, kind="stable")
    user_pos, items = user_pos[order], items[order]
    starts = np.r_[0, np.flatnonzero(np.diff(user_pos)) + 1]
    counts = np.diff(np.r_[starts, len(user_pos)])
    rank = np.arange(len(user_pos)) - np.repeat(starts, counts)
    keep = rank < k
    recs[user_pos[keep], rank[keep]] = items[keep]
    return recs


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - started


# ---- recsmith ---------------------------------------------------------------------------------


class Recsmith(Library):
    """recsmith's models through ``recsmith.evaluation.runner.evaluate_model`` (the serving path:
    ``ModelBundle.train`` + ``top_k``, seen items excluded, short lists filled by popularity)."""

    name = "recsmith"
    packages = ("recsmith",)
    families: ClassVar[dict[str, Family]] = {
        "popular": Family("popular", "popular"),
        "itemknn": Family(
            "itemknn",
            "itemknn",
            grid=[
                {},  # neighbors 100, shrinkage 10
                {"neighbors": 50, "shrinkage": 0.0},
                {"neighbors": 200, "shrinkage": 50.0},
                {"neighbors": 30, "shrinkage": 10.0},
                {"neighbors": 400, "shrinkage": 10.0},
                {"neighbors": 100, "shrinkage": 100.0},
                {"neighbors": 100, "shrinkage": 10.0, "binary": True},
                {"neighbors": 200, "shrinkage": 0.0, "binary": True},
            ],
        ),
        "ials": Family(
            "ials",
            "ials",
            grid=[
                {},  # factors 64, regularization 0.05, alpha 2, iterations 15
                {"alpha": 10.0},
                {"factors": 128},
                {"regularization": 1.0},
                {"factors": 128, "alpha": 10.0, "regularization": 1.0},
                {"alpha": 0.5},
                {"factors": 32, "alpha": 10.0},
                {"factors": 128, "alpha": 20.0, "regularization": 5.0},
            ],
        ),
        "ease": Family(
            "ease",
            "ease",
            grid=[
                {},  # regularization 250
                {"regularization": 50.0},
                {"regularization": 1000.0},
                {"regularization": 100.0},
                {"regularization": 500.0},
                {"regularization": 2000.0},
                {"regularization": 20.0},
                {"regularization": 5000.0},
            ],
            dense=True,
        ),
        "bpr": Family(
            "bpr",
            "bpr",
            grid=[
                {},  # factors 64, learning_rate 0.05, regularization 0.01, iterations 100
                {"learning_rate": 0.01},
                {"factors": 128},
                {"regularization": 0.001},
                {"iterations": 300},
                {"learning_rate": 0.1, "regularization": 0.001},
                {"factors": 128, "learning_rate": 0.01, "iterations": 300},
                {"regularization": 0.1},
            ],
        ),
        # what `recsmith train --pipeline examples/pipeline.toml` ships: it calibrates itself on
        # its train part, so it has no grid (and no validation run) here
        "pipeline": Family("pipeline", "default pipeline (examples/pipeline.toml)"),
        "hybrid": Family(
            "hybrid",
            "hybrid (ease+ials+itemknn, weights learnt)",
            dense=True,
            without_dense=Family(
                "hybrid",
                "hybrid (ials+itemknn, weights learnt)",
                defaults={"components": {"ials": {}, "itemknn": {}}},
            ),
        ),
    }

    def run(self, family: Family, params: dict[str, Any], p: Any, k: int) -> Outcome:
        from recsmith.evaluation.runner import evaluate_model

        if family.key == "pipeline":
            return _default_pipeline(p, k)
        result = evaluate_model(
            family.key, p.data, p.truth, k, params, ("precision", "recall", "ndcg", "map")
        )
        return Outcome(None, result.fit_seconds, result.recommend_seconds, result=result)


def _default_pipeline(p: Any, k: int) -> Outcome:
    """The default pipeline trained on the split's train events and catalogue as ``recsmith
    train`` trains it (calibration included), its lists for the evaluated users in ``p.data``'s
    item numbering (``in_events_numbering``)."""
    from calibrated_default import in_events_numbering, with_calibration

    from recsmith.config import EventSettings
    from recsmith.pipeline.artifact import train_pipeline

    weights = dict(EventSettings().weights)
    pipeline, fit = _timed(
        lambda: train_pipeline(with_calibration(True), p.events, weights, items=list(p.items))
    )
    (top, _, _), rec = _timed(lambda: pipeline.top_k(p.truth.user_ids, k))
    recs = in_events_numbering(pipeline, top.ids, p.data)
    calibration = pipeline.manifest.get("calibration", {})
    return Outcome(recs, fit, rec, note=f"serves {calibration.get('chosen', 'as configured')}")


# ---- implicit ---------------------------------------------------------------------------------

ALS_GRID = [
    {},  # implicit defaults: factors 100, regularization 0.01, alpha 1, iterations 15
    {"alpha": 10.0},
    {"factors": 64, "regularization": 0.05, "alpha": 2.0},  # = recsmith ials defaults
    {"regularization": 1.0},
    {"factors": 128, "alpha": 10.0, "regularization": 1.0},
    {"alpha": 40.0, "regularization": 1.0},
    {"factors": 32, "alpha": 10.0},
    {"factors": 128, "alpha": 20.0, "regularization": 5.0},
]


def _implicit_als(params: dict[str, Any]) -> Any:
    from implicit.cpu.als import AlternatingLeastSquares

    return AlternatingLeastSquares(random_state=SEED, **params)


class Implicit(Library):
    """The ``implicit`` library called directly on ``csr_matrix(data.matrix)``."""

    name = "implicit"
    packages = ("implicit",)
    families: ClassVar[dict[str, Family]] = {
        "als": Family("als", "AlternatingLeastSquares", grid=ALS_GRID),
        "bpr": Family(
            "bpr",
            "BayesianPersonalizedRanking",
            grid=[
                {},  # factors 100, learning_rate 0.01, regularization 0.01, iterations 100
                {"learning_rate": 0.05},
                {"factors": 64, "learning_rate": 0.05, "regularization": 0.01},
                {"regularization": 0.001},
                {"iterations": 300},
                {"learning_rate": 0.1, "regularization": 0.001},
                {"factors": 128, "learning_rate": 0.05, "iterations": 300},
                {"regularization": 0.1},
            ],
        ),
        "cosine": Family(
            "cosine",
            "CosineRecommender",
            grid=[{}, {"K": 50}, {"K": 100}, {"K": 200}, {"K": 10}, {"K": 400}, {"K": 30}],
        ),
    }

    def check(self) -> str | None:
        try:
            import implicit.cpu.als
            import implicit.nearest_neighbours  # noqa: F401
        except Exception as exc:  # pragma: no cover - reported, not raised
            return f"{type(exc).__name__}: {exc}"
        return None

    def run(self, family: Family, params: dict[str, Any], p: Any, k: int) -> Outcome:
        if family.key == "als":
            model = _implicit_als(params)
        elif family.key == "bpr":
            from implicit.cpu.bpr import BayesianPersonalizedRanking

            model = BayesianPersonalizedRanking(random_state=SEED, **params)
        else:
            from implicit.nearest_neighbours import CosineRecommender

            model = CosineRecommender(**params)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Method expects CSR input")
            _, fit = _timed(lambda: model.fit(p.matrix, show_progress=False))
            (ids, _), rec = _timed(
                lambda: model.recommend(
                    p.user_index, p.matrix[p.user_index], N=k, filter_already_liked_items=True
                )
            )
        ids = np.asarray(ids, dtype=np.int64).reshape(len(p.user_index), -1)
        if ids.shape[1] < k:
            ids = np.pad(ids, ((0, 0), (0, k - ids.shape[1])), constant_values=-1)
        return Outcome(ids, fit, rec)


# ---- RecTools ---------------------------------------------------------------------------------


class RecTools(Library):
    """RecTools models on ``Dataset.construct`` of the same matrix, lists from
    ``recommend(filter_viewed=True)``."""

    name = "RecTools"
    packages = ("rectools", "pm-implicit", "implicit")
    families: ClassVar[dict[str, Family]] = {
        "popular": Family("popular", "PopularModel"),
        "ease": Family(
            "ease",
            "EASEModel",
            grid=[
                {},  # regularization 500
                {"regularization": 100.0},
                {"regularization": 2000.0},
                {"regularization": 250.0},
                {"regularization": 1000.0},
                {"regularization": 50.0},
                {"regularization": 5000.0},
                {"regularization": 20.0},
            ],
            dense=True,
        ),
        "als": Family("als", "ImplicitALSWrapperModel", grid=ALS_GRID),
        "itemknn": Family(
            "itemknn",
            "ImplicitItemKNNWrapperModel",
            defaults={"similarity": "cosine"},
            grid=[
                {},  # CosineRecommender(K=20)
                {"K": 100},
                {"similarity": "bm25", "K": 100},
                {"similarity": "tfidf", "K": 100},
                {"similarity": "bm25", "K": 20},
                {"K": 200},
                {"similarity": "bm25", "K": 300},
                {"similarity": "tfidf", "K": 20},
            ],
        ),
    }

    def check(self) -> str | None:
        try:
            from rectools.dataset import Dataset  # noqa: F401
            from rectools.models import (  # noqa: F401
                EASEModel,
                ImplicitALSWrapperModel,
                ImplicitItemKNNWrapperModel,
                PopularModel,
            )
        except Exception as exc:  # pragma: no cover - reported, not raised
            return f"{type(exc).__name__}: {exc}"
        return None

    def _dataset(self, p: Any) -> Any:
        from rectools import Columns
        from rectools.dataset import Dataset

        cached = p.cache.get("rectools")
        if cached is None:
            frame = p.frame.rename(
                columns={
                    "user": Columns.User,
                    "item": Columns.Item,
                    "weight": Columns.Weight,
                    "datetime": Columns.Datetime,
                }
            )[[Columns.User, Columns.Item, Columns.Weight, Columns.Datetime]]
            cached, seconds = _timed(lambda: Dataset.construct(frame))
            p.cache["rectools"] = cached
            p.cache["rectools_seconds"] = seconds
        return cached

    def _model(self, family: Family, params: dict[str, Any]) -> Any:
        from rectools.models import (
            EASEModel,
            ImplicitALSWrapperModel,
            ImplicitItemKNNWrapperModel,
            PopularModel,
        )

        if family.key == "popular":
            return PopularModel(**params)
        if family.key == "ease":
            return EASEModel(**params)
        if family.key == "als":
            return ImplicitALSWrapperModel(_implicit_als(params))
        from implicit.nearest_neighbours import (
            BM25Recommender,
            CosineRecommender,
            TFIDFRecommender,
        )

        params = dict(params)
        cls = {"cosine": CosineRecommender, "bm25": BM25Recommender, "tfidf": TFIDFRecommender}[
            params.pop("similarity")
        ]
        return ImplicitItemKNNWrapperModel(cls(**params))

    def run(self, family: Family, params: dict[str, Any], p: Any, k: int) -> Outcome:
        from rectools import Columns

        dataset = self._dataset(p)
        model = self._model(family, params)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Method expects CSR input")
            _, fit = _timed(lambda: model.fit(dataset))
            out, rec = _timed(
                lambda: model.recommend(
                    users=p.user_index,
                    dataset=dataset,
                    k=k,
                    filter_viewed=True,
                    on_unsupported_targets="warn",
                )
            )
        out = out.sort_values([Columns.User, Columns.Rank], kind="stable")
        pos = np.searchsorted(p.user_index_sorted, out[Columns.User].to_numpy(dtype=np.int64))
        recs = _fill(
            len(p.user_index),
            k,
            p.user_index_order[pos],
            out[Columns.Item].to_numpy(dtype=np.int64),
        )
        return Outcome(recs, fit, rec)


# ---- LensKit ----------------------------------------------------------------------------------


class LensKit(Library):
    """LensKit 2025 pipelines (``topn_pipeline``: the user's training items are excluded by the
    default candidate selector) trained on ``from_interactions_df`` of the same matrix."""

    name = "LensKit"
    packages = ("lenskit", "torch")
    families: ClassVar[dict[str, Family]] = {
        "popular": Family("popular", "PopScorer"),
        "itemknn": Family(
            "itemknn",
            "ItemKNNScorer",
            grid=[
                {},  # max_nbrs 20, feedback explicit
                {"feedback": "implicit"},
                {"feedback": "implicit", "max_nbrs": 50},
                {"feedback": "implicit", "max_nbrs": 100},
                {"max_nbrs": 50},
                {"feedback": "implicit", "max_nbrs": 200},
                {"feedback": "implicit", "max_nbrs": 10},
                {"max_nbrs": 100},
            ],
        ),
        "userknn": Family(
            "userknn",
            "UserKNNScorer",
            grid=[
                {},  # max_nbrs 20, feedback explicit
                {"feedback": "implicit"},
                {"feedback": "implicit", "max_nbrs": 50},
                {"feedback": "implicit", "max_nbrs": 100},
                {"max_nbrs": 50},
                {"feedback": "implicit", "max_nbrs": 200},
                {"feedback": "implicit", "max_nbrs": 10},
                {"max_nbrs": 100},
            ],
        ),
        "implicitmf": Family(
            "implicitmf",
            "ImplicitMFScorer",
            grid=[
                {},  # embedding_size 50, epochs 10, regularization 0.1, weight 40, use_ratings F
                {"weight": 10.0},
                {"embedding_size": 100},
                {"use_ratings": True, "weight": 10.0},
                {"regularization": 1.0},
                {"embedding_size": 100, "weight": 10.0, "regularization": 1.0},
                {"use_ratings": True, "weight": 2.0},
                {"embedding_size": 128, "epochs": 20, "weight": 20.0, "regularization": 1.0},
            ],
        ),
        "ease": Family(
            "ease",
            "EASEScorer",
            grid=[
                {},  # regularization 1
                {"regularization": 250.0},
                {"regularization": 50.0},
                {"regularization": 1000.0},
                {"regularization": 100.0},
                {"regularization": 500.0},
                {"regularization": 10.0},
                {"regularization": 2000.0},
            ],
            dense=True,
        ),
    }

    def check(self) -> str | None:
        try:
            import lenskit.als
            import lenskit.basic
            import lenskit.batch
            import lenskit.knn  # noqa: F401
            from lenskit.data import from_interactions_df  # noqa: F401
        except Exception as exc:  # pragma: no cover - reported, not raised
            return f"{type(exc).__name__}: {exc}"
        return None

    def _dataset(self, p: Any) -> Any:
        from lenskit.data import from_interactions_df

        cached = p.cache.get("lenskit")
        if cached is None:
            frame = p.frame.rename(
                columns={"user": "user_id", "item": "item_id", "weight": "rating"}
            )[["user_id", "item_id", "rating"]]
            cached, seconds = _timed(
                lambda: from_interactions_df(
                    frame,
                    users=np.arange(p.data.n_users, dtype=np.int64),
                    items=np.arange(p.data.n_items, dtype=np.int64),
                )
            )
            p.cache["lenskit"] = cached
            p.cache["lenskit_seconds"] = seconds
        return cached

    def _scorer(self, family: Family, params: dict[str, Any]) -> Any:
        from lenskit.als import ImplicitMFConfig, ImplicitMFScorer
        from lenskit.basic import PopConfig, PopScorer
        from lenskit.knn import (
            EASEConfig,
            EASEScorer,
            ItemKNNConfig,
            ItemKNNScorer,
            UserKNNConfig,
            UserKNNScorer,
        )

        cls, cfg = {
            "popular": (PopScorer, PopConfig),
            "itemknn": (ItemKNNScorer, ItemKNNConfig),
            "userknn": (UserKNNScorer, UserKNNConfig),
            "implicitmf": (ImplicitMFScorer, ImplicitMFConfig),
            "ease": (EASEScorer, EASEConfig),
        }[family.key]
        return cls(cfg(**params))

    def run(self, family: Family, params: dict[str, Any], p: Any, k: int) -> Outcome:
        from lenskit.batch import recommend
        from lenskit.pipeline import topn_pipeline
        from lenskit.training import TrainingOptions

        dataset = self._dataset(p)
        pipe = topn_pipeline(self._scorer(family, params), n=k)
        _, fit = _timed(lambda: pipe.train(dataset, TrainingOptions(rng=SEED)))
        users = p.user_index.tolist()
        out, rec = _timed(lambda: recommend(pipe, users, n=k, n_jobs=1))
        pos_of = {u: i for i, u in enumerate(users)}
        recs = np.full((len(users), k), -1, dtype=np.int64)
        for key, items in out:
            ids = np.asarray(items.ids(), dtype=np.int64)[:k]
            recs[pos_of[int(key.user_id)], : len(ids)] = ids
        return Outcome(recs, fit, rec)


LIBRARIES: dict[str, type[Library]] = {
    lib.name.lower(): lib for lib in (Recsmith, Implicit, RecTools, LensKit)
}


def interaction_frame(data: Any) -> pd.DataFrame:
    """``data.matrix`` as a (user, item, weight, datetime) frame; datetime = the pair's latest event
    (RecTools needs one; only time-aware models would use it)."""
    coo = sparse.coo_array(data.matrix)
    n_items = data.n_items
    key = data.event_users.astype(np.int64) * n_items + data.event_items.astype(np.int64)
    last = pd.Series(data.event_ts).groupby(key).max()
    pair = coo.row.astype(np.int64) * n_items + coo.col.astype(np.int64)
    ts = last.reindex(pair).to_numpy()
    ts = np.where(np.isnan(ts), data.reference_ts, ts).astype(np.int64)
    return pd.DataFrame(
        {
            "user": coo.row.astype(np.int64),
            "item": coo.col.astype(np.int64),
            "weight": coo.data.astype(np.float32),
            "datetime": pd.to_datetime(ts, unit="us"),
        }
    )


def thread_info() -> str:
    parts = []
    try:
        import torch

        parts.append(f"torch threads {torch.get_num_threads()}")
    except Exception:  # pragma: no cover
        pass
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        if os.environ.get(var):
            parts.append(f"{var}={os.environ[var]}")
    return ", ".join(parts)
