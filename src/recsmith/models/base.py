"""The Recommender interface: sklearn habits, numpy in and out, persistence without pickle.

A model's ``Config`` (pydantic) is the single source of its parameters. ``__init__`` does no work,
``fit`` learns arrays whose names end in ``_``, and ``recommend`` answers many users in one
vectorised
call, with seen-item exclusion and candidate restriction applied before the top-k, not after.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
from pydantic import BaseModel, ConfigDict
from scipy import sparse

from recsmith.array_files import load_arrays, read_arrays, save_arrays
from recsmith.errors import NotFittedError
from recsmith.features.interactions import Interactions
from recsmith.models.derived import Derivation, unit_rows
from recsmith.models.product_top_k import product_flat_top, product_top_k
from recsmith.models.topk import FlatTop, Kernel, TopK, bounded_top_k, top_k
from recsmith.sparse_rows import csr_from_pairs

#: Dense score cells computed per chunk of users: bounds memory to ~80 MB of float32.
_CELLS_PER_CHUNK = 20_000_000


class ModelConfig(BaseModel):
    """Base of every model config: an unknown key is refused (a typo is an error, not a default
    kept), a config is immutable, and it round-trips through JSON (``model.json``).

    Values are converted as pydantic's lax mode does, not strictly: ``"64"`` is 64 (a command
    line's ``--param factors=64``), ``64.0`` is 64 (a TOML float, a tuning grid's value), but
    ``64.5`` or ``"x"`` for an integer is refused, naming the field. Strict mode would refuse the
    command line's strings and a TOML float given for an integer.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)


class Recommender(ABC):
    """Base class of all models; see the module docstring for the contract."""

    name: ClassVar[str]
    Config: ClassVar[type[ModelConfig]]
    #: Fits on ``Interactions.profiles`` (user properties): callers load them only for such a
    #: model, and every path that fits one (train, evaluate, tune, retrain) must pass them.
    uses_profiles: ClassVar[bool] = False
    #: Reads a history row's stored column order as time (a sequence model, a user tower
    #: pooling the latest items): serving then reads a user's stored items oldest first
    #: (``EventStore.user_items(by_time=True)``), a dearer read the others never ask for.
    reads_order: ClassVar[bool] = False
    #: What serving derives from the fitted arrays (unit item vectors, popularity's order),
    #: written into the release by ``save`` and mapped by ``load``: one copy in the page cache
    #: for every worker, where each derived its own.
    derivations: ClassVar[tuple[Derivation, ...]] = ()

    def __init__(self, config: ModelConfig | None = None, **params: Any) -> None:
        if config is not None and params:
            raise TypeError("give either a config or keyword parameters, not both")
        self.config = config if config is not None else self.Config(**params)

    def get_params(self) -> dict[str, Any]:
        return self.config.model_dump()

    # ---- to implement -----------------------------------------------------------------------

    @abstractmethod
    def fit(self, data: Interactions) -> Self:
        """Learn from interactions; returns self."""

    @abstractmethod
    def _score(self, users: np.ndarray) -> np.ndarray:
        """Dense float32 scores [len(users), n_items] for valid internal user indices."""

    @abstractmethod
    def _item_scores(self, items: np.ndarray) -> np.ndarray:
        """Dense float32 item-to-item scores [len(items), n_items]; the item itself is masked
        later."""

    @abstractmethod
    def _arrays(self) -> dict[str, np.ndarray]:
        """Learned arrays to persist (names end with ``_``)."""

    @property
    @abstractmethod
    def n_items(self) -> int: ...

    # ---- shared behaviour ---------------------------------------------------------------------

    def check_is_fitted(self) -> None:
        if not all(hasattr(self, n) for n in self._fitted_names()):
            raise NotFittedError(f"{type(self).__name__} is not fitted yet: call fit() first")

    def _fitted_names(self) -> tuple[str, ...]:
        names = {n for cls in type(self).__mro__ for n in getattr(cls, "__annotations__", {})}
        return tuple(sorted(n for n in names if n.endswith("_") and not n.startswith("_")))

    def recommend(
        self,
        users: np.ndarray,
        k: int,
        *,
        exclude: sparse.csr_array | None = None,
        candidates: np.ndarray | None = None,
        blocked: np.ndarray | None = None,
    ) -> TopK:
        """Top ``k`` items for each user index.

        ``exclude`` rows align with ``users`` (row i ↔ users[i]); its nonzero items never appear.
        ``candidates`` (item indices) restricts every list to that set. ``blocked`` (a boolean
        mask over items, e.g. the unavailable ones) never appears in any list: one mask for the
        batch, where the same items as ``exclude`` rows would cost a copy per user.
        """
        self.check_is_fitted()
        users = np.asarray(users, dtype=np.int64)
        if exclude is not None and exclude.shape[0] != len(users):
            raise ValueError(f"exclude has {exclude.shape[0]} rows for {len(users)} users")
        allowed = None
        if candidates is not None:
            allowed = np.zeros(self.n_items, dtype=bool)
            allowed[np.asarray(candidates, dtype=np.int64)] = True
        return self._masked_top_k(users, k, exclude, allowed, blocked)

    def _masked_top_k(
        self,
        users: np.ndarray,
        k: int,
        exclude: sparse.csr_array | None,
        allowed: np.ndarray | None,
        blocked: np.ndarray | None,
    ) -> TopK:
        """``recommend``'s lists once its arguments are checked: every row scored densely over
        the catalogue, masked, then its top ``k``. A model whose order is the same for every
        user (popularity) overrides this to skip the dense rows."""

        def block(start: int, stop: int) -> np.ndarray:
            scores = self._score(users[start:stop])
            if allowed is not None:
                scores[:, ~allowed] = -np.inf
            if exclude is not None:
                _mask(scores, exclude[start:stop])
            if blocked is not None:
                scores[:, blocked] = -np.inf
            return scores

        return self._chunked_top_k(len(users), block, k)

    def _score_history(self, history: sparse.csr_array) -> np.ndarray:
        """Dense float32 scores [n_rows, n_items] for rows of item weights (an anonymous session,
        a user's recent items). Item-based models override this; factor models cannot."""
        raise NotImplementedError(f"{self.name} cannot score an item history")

    @property
    def embeddings(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(user vectors, item vectors) when the model's score for a known user is exactly their
        inner product — what an inner-product nearest-neighbour index can retrieve for; None for
        models that score otherwise (neighbourhoods, EASE, popularity)."""
        return None

    @property
    def scores_histories(self) -> bool:
        """True when the model answers visitors from their items alone (recommend_from_items)."""
        return type(self)._score_history is not Recommender._score_history

    @property
    def weighs_recency(self) -> bool:
        """Whether the places in time of a history's items change its scores (EASE's
        ``recency``): only then do callers build ``recommend_from_items``' ``places``, a cost
        the other models never pay."""
        return False

    def _score_places(self, history: sparse.csr_array, places: sparse.csr_array) -> np.ndarray:
        """``_score_history`` of rows whose items have places in time (``recommend_from_items``'
        ``places``): a model that ``weighs_recency`` overrides it, the others score the rows
        as they stand."""
        return self._score_history(history)

    def recommend_from_items(
        self,
        history: sparse.csr_array,
        k: int,
        *,
        exclude: sparse.csr_array | None = None,
        blocked: np.ndarray | None = None,
        places: sparse.csr_array | None = None,
    ) -> TopK:
        """Top ``k`` for each row of ``history`` (n_rows × n_items item weights), excluding the
        row's own items, the row's ``exclude`` items (masked only, never scored as history)
        and the ``blocked`` ones (see ``recommend``): recommendations for a visitor nobody
        knows yet, from their session. ``places`` (rows aligned with ``history``, canonical,
        ``sparse_rows.newest_first``): each row's items' places in time, 1 = newest, read by a
        model that ``weighs_recency`` (a history item without a place is older than any with
        one); None: no order known, the rows are scored as a set."""
        self.check_is_fitted()
        history = sparse.csr_array(history)
        masked = None if exclude is None else sparse.csr_array(exclude)

        def block(start: int, stop: int) -> np.ndarray:
            rows = history[start:stop]
            scores = (
                self._score_history(rows)
                if places is None
                else self._score_places(rows, _rows_between(places, start, stop))
            )
            _mask(scores, rows)
            if masked is not None:
                _mask(scores, masked[start:stop])
            if blocked is not None:
                scores[:, blocked] = -np.inf
            return scores

        return self._chunked_top_k(history.shape[0], block, k)

    @property
    def item_to_item(self) -> sparse.csr_array | None:
        """The sparse item × item matrix M of models that score a history as ``history @ M``
        (item-kNN, co-occurrence), else None. With it, retrieval and item-to-item lists rank only
        the items that have a score rather than scanning the whole catalogue per row."""
        return None

    @property
    def zero_is_no_evidence(self) -> bool:
        """Whether a score of exactly 0 means that nothing in the history reaches the item: no
        neighbour points there (``item_to_item``: item-kNN, co-occurrence), or, for a linear
        item-item model that declares it (EASE), no path in the co-occurrence graph. Factor
        models (iALS, BPR, two-tower) score every item, and 0 is a score there like any other."""
        return self.item_to_item is not None

    def with_evidence(self, top: TopK) -> TopK:
        """``top`` without the slots scored 0 by a model where that means no evidence
        (``zero_is_no_evidence``): the item is an arbitrary one, a tie in index order, and
        listing it as "for you" or "similar to what you viewed" would be false. Callers fill the
        emptied (−1) slots from popularity or other sources. Other models: unchanged.

        The kept items move to the front of their row, in order: a model that also scores below
        0 (EASE) leaves its 0s between its positive and negative items, and callers read the
        first ``(ids >= 0).sum()`` slots as the model's and fill after them."""
        if not self.zero_is_no_evidence:
            return top
        empty = ~np.isfinite(top.scores) | (top.scores == 0)
        order = np.argsort(empty, axis=1, kind="stable")
        return TopK(
            np.take_along_axis(np.where(empty, -1, top.ids), order, axis=1),
            np.take_along_axis(np.where(empty, -np.inf, top.scores), order, axis=1),
        )

    def sparse_from_items(
        self,
        history: sparse.csr_array,
        k: int,
        exclude: sparse.csr_array | None = None,
        drop_own: bool = True,
    ) -> TopK:
        """Top ``k`` per row of ``history`` among items with a score (needs ``item_to_item``),
        never those in ``exclude`` nor, with ``drop_own``, the row's own items: what a retrieval
        source proposes, where an item with no evidence at all is no candidate. A caller whose
        ``exclude`` already holds what must not come back passes ``drop_own=False`` (repeat
        purchases: the history's items are candidates)."""
        matrix, drop = self._product_of(history, exclude, drop_own)
        return product_top_k(history, matrix, k, drop)

    def sparse_flat_from_items(
        self,
        history: sparse.csr_array,
        k: int,
        exclude: sparse.csr_array | None = None,
        drop_own: bool = True,
    ) -> FlatTop:
        """``flat(self.sparse_from_items(history, k, exclude, drop_own))``, made without the
        padded ``TopK`` (``product_flat_top``): what a retrieval source hands on."""
        matrix, drop = self._product_of(history, exclude, drop_own)
        return product_flat_top(history, matrix, k, drop)

    def _product_of(
        self, history: sparse.csr_array, exclude: sparse.csr_array | None, drop_own: bool
    ) -> tuple[sparse.csr_array, list[sparse.csr_array]]:
        """``item_to_item`` and what a product with it drops: the history's own items with
        ``drop_own``, and ``exclude``."""
        matrix = self.item_to_item
        if matrix is None:
            raise NotImplementedError(f"{self.name} has no sparse item-to-item matrix")
        drop = [history] if drop_own else []
        return matrix, drop if exclude is None else [*drop, exclude]

    def similar_items(self, items: np.ndarray, k: int) -> TopK:
        """Top ``k`` items most similar to each item index (never the item itself)."""
        self.check_is_fitted()
        items = np.asarray(items, dtype=np.int64)
        if self.item_to_item is not None:
            own = csr_from_pairs(len(items), self.n_items, np.arange(len(items)), items)
            return self.sparse_from_items(own, k)

        def block(start: int, stop: int) -> np.ndarray:
            scores = self._item_scores(items[start:stop])
            scores[np.arange(stop - start), items[start:stop]] = -np.inf
            return scores

        return self._chunked_top_k(len(items), block, k, bounded_top_k)

    def _chunked_top_k(
        self, n_rows: int, block: Callable[[int, int], np.ndarray], k: int, kernel: Kernel = top_k
    ) -> TopK:
        """Top-k over rows scored chunk by chunk, so dense scores never exceed the memory bound.
        ``kernel``: ``top_k``, or ``bounded_top_k`` for the item lists (one row per request,
        ties by index)."""
        chunk = max(1, _CELLS_PER_CHUNK // max(self.n_items, 1))
        parts = [kernel(block(s, min(s + chunk, n_rows)), k) for s in range(0, n_rows, chunk)]
        if not parts:
            return top_k(np.zeros((0, self.n_items), np.float32), k)
        return TopK(np.vstack([p.ids for p in parts]), np.vstack([p.scores for p in parts]))

    # ---- persistence ------------------------------------------------------------------------

    def save(self, path: Path, *, answers_similar: bool = True) -> None:
        """Write ``model.json`` (name + config), ``arrays/`` (``.npy`` files; no pickle) and
        ``derived/`` (its ``derivations``), those read by ``similar_items`` alone only when it
        ``answers_similar``: a pipeline's retrieval sources never do (the primary model answers
        ``/similar``), and their unit item vectors would cost 73 MiB each at 300k × 64."""
        self.check_is_fitted()
        path.mkdir(parents=True, exist_ok=True)
        (path / "model.json").write_text(
            json.dumps({"name": self.name, "config": self.get_params()}, indent=2) + "\n"
        )
        save_arrays(path / "arrays", self._arrays())
        kept = [d for d in self.derivations if answers_similar or not d.similar_only]
        if kept:
            save_arrays(path / "derived", {d.file: d.of(self) for d in kept})

    @classmethod
    def load(cls, path: Path) -> Self:
        meta = json.loads((path / "model.json").read_text())
        if meta["name"] != cls.name:
            raise ValueError(f"{path} holds a {meta['name']!r} model, not {cls.name!r}")
        arrays = read_arrays(path / "arrays", path / "model.npz")  # format 2 mapped, or 1
        model = cls.from_arrays(cls.Config(**meta["config"]), arrays)
        if cls.derivations and (path / "derived").is_dir():  # a release written before has none
            kept = load_arrays(path / "derived")
            for derivation in cls.derivations:  # in order: one may derive from another
                if derivation.file in kept:  # of this version: another one is derived afresh
                    derivation.adopt(model, kept[derivation.file])
        return model

    @classmethod
    def from_arrays(cls, config: ModelConfig, arrays: dict[str, np.ndarray]) -> Self:
        """A fitted model from its learned arrays (the names ``_arrays`` writes): how a saved
        model loads, and how one fitted elsewhere (``recsmith.spark``) becomes the same object,
        so it saves, serves and evaluates exactly like one fitted in this process."""
        model = cls(config)
        model._restore(dict(arrays))
        model.check_is_fitted()
        return model

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        """Set learned arrays back; models holding sparse matrices override this."""
        for key, value in arrays.items():
            setattr(self, key, value)


#: An encoded model's item vectors at unit length (its ``/similar`` cosines), kept once per fit
#: and written into the release, as a factor model's are.
UNIT_ITEM_VECTORS = Derivation(
    "unit_items", lambda model: model.item_vectors_, unit_rows, similar_only=True
)


class EncodedRecommender(Recommender):
    """A model whose known users and its items are vectors kept from its fit (``user_vectors_``,
    ``item_vectors_``), scored by inner product: the networks that encode users (SASRec's
    sequences, the two towers) share this serving half and differ in how they encode.
    ``unit_items``: the derivation whose cosines ``/similar`` ranks by."""

    unit_items: ClassVar[Derivation] = UNIT_ITEM_VECTORS
    derivations = (UNIT_ITEM_VECTORS,)
    user_vectors_: np.ndarray  # [n_users, dim], each known user as of the end of training
    item_vectors_: np.ndarray  # [n_items, dim]

    @property
    def n_items(self) -> int:
        return int(self.item_vectors_.shape[0])

    def _score(self, users: np.ndarray) -> np.ndarray:
        return self.user_vectors_[users] @ self.item_vectors_.T

    @property
    def embeddings(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Each known user's vector as of training, and every item's."""
        return self.user_vectors_, self.item_vectors_

    def _item_scores(self, items: np.ndarray) -> np.ndarray:
        unit = self.unit_items.of(self)
        return unit[items] @ unit.T


def _rows_between(matrix: sparse.csr_array, start: int, stop: int) -> sparse.csr_array:
    """``matrix[start:stop]``, or ``matrix`` itself where that is all of it (a lone request's
    block): scipy's slice copies the rows (~16 µs)."""
    return matrix if start == 0 and stop >= matrix.shape[0] else matrix[start:stop]


def _mask(scores: np.ndarray, rows: sparse.csr_array) -> None:
    """Set -inf where ``rows`` (aligned with ``scores``) has an entry: those items never appear."""
    r = np.repeat(np.arange(rows.shape[0]), np.diff(rows.indptr))
    scores[r, rows.indices] = -np.inf


def sparse_to_arrays(prefix: str, matrix: sparse.csr_array) -> dict[str, np.ndarray]:
    """A CSR matrix as plain arrays (``recsmith.array_files``): data, indices, indptr, shape."""
    return {
        f"{prefix}data": matrix.data,
        f"{prefix}indices": matrix.indices,
        f"{prefix}indptr": matrix.indptr,
        f"{prefix}shape": np.asarray(matrix.shape, dtype=np.int64),
    }


def sparse_from_arrays(prefix: str, arrays: dict[str, np.ndarray]) -> sparse.csr_array:
    shape = tuple(int(x) for x in arrays.pop(f"{prefix}shape"))
    return sparse.csr_array(
        (
            arrays.pop(f"{prefix}data"),
            arrays.pop(f"{prefix}indices"),
            arrays.pop(f"{prefix}indptr"),
        ),
        shape=shape,
    )
