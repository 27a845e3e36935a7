"""Items first seen after training join the served pipeline's item index, without a retrain.

A shop creates an item with ``PUT /v1/items/{id}`` and expects it in lists within the catalogue
sync's interval, not at the next training. The trained models cannot score it (their arrays are
as trained: no collaborative score), but every part that works from the catalogue can: the id
map, exclusions (a user who has it never gets it), the rules' catalogue view (category,
availability, properties), the feature state the ranker reads, the new-arrivals source and
content similarity. Growing appends the new items after the trained ones, so every trained index
keeps its meaning; model-backed sources see queries cut back to the trained items
(``TrainedWidth``). Done once per catalogue-sync batch that brings new ids, never per request.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy import sparse

from recsmith.bundle import ModelBundle
from recsmith.events.schema import Item
from recsmith.features.interactions import MICROS_PER_DAY
from recsmith.ids import IdMap
from recsmith.pipeline.item_attributes import ItemAttributes
from recsmith.ranking.features import FeatureState
from recsmith.retrieval.queries import Queries
from recsmith.retrieval.sources import CandidateSource, Proposals


def new_records(items: Sequence[Item], ids: IdMap) -> list[Item]:
    """The records of ``items`` whose ids ``ids`` lacks, one per id (the last one wins), in the
    order the ids first appear."""
    unknown = ids.to_index(np.asarray([it.item_id for it in items], dtype=object)) < 0
    latest = {it.item_id: it for it, new in zip(items, unknown, strict=True) if new}
    return list(latest.values())


def grown_bundle(bundle: ModelBundle, new_ids: Sequence[str]) -> ModelBundle:
    """``bundle`` (a shallow copy) whose id map has ``new_ids`` appended: exclusions, external
    ids and item lists speak of them; the models, seen items and popularity stay as trained."""
    out = copy.copy(bundle)
    out.items = IdMap(np.concatenate([bundle.items.external_ids, np.asarray(new_ids, object)]))
    out.available = np.concatenate([bundle.available, np.ones(len(new_ids), bool)])
    out.blocked = None if out.available.all() else ~out.available
    return out


def grown_state(state: FeatureState, attrs: ItemAttributes) -> FeatureState:
    """The ranker's feature state with rows for the items ``attrs`` has past ``state``'s: no
    popularity or trend (no events in the trained data), their age from ``created_at`` (0 when
    created after the state's reference time), price, and their category where the state has
    a column for it (a category new since training is none to the ranker)."""
    n_old, n = len(state.item_popularity), len(attrs.category)
    zeros = np.zeros(n - n_old, np.float32)
    created = attrs.created_ts[n_old:]
    age = np.where(
        created >= 0, np.maximum(0.0, (state.reference_ts - created) / MICROS_PER_DAY), np.nan
    )
    category = attrs.category[n_old:]
    category = np.where(category < state.user_category_share.shape[1], category, -1)
    seg = state.segment_item_share
    return replace(
        state,
        item_popularity=np.concatenate([state.item_popularity, zeros]),
        item_trend=np.concatenate([state.item_trend, zeros]),
        item_age_days=np.concatenate([state.item_age_days, age.astype(np.float32)]),
        item_price=np.concatenate([state.item_price, attrs.price[n_old:].astype(np.float32)]),
        item_category=np.concatenate([state.item_category, category.astype(np.int32)]),
        # no declared property or segment popularity for an item the state never saw
        item_properties=np.concatenate(
            [state.item_properties, np.full((n - n_old, len(state.item_property_names)), np.nan)]
        ).astype(np.float32),
        segment_item_share=sparse.csr_array(
            (seg.data, seg.indices, seg.indptr), shape=(seg.shape[0], max(n, seg.shape[1]))
        ),
    )


def narrow(matrix: sparse.csr_array, n_items: int) -> sparse.csr_array:
    """``matrix[:, :n_items]`` in one vectorised pass (scipy's column slicing costs more, and
    this runs per request on a grown pipeline)."""
    if matrix.shape[1] == n_items:
        return matrix
    keep = matrix.indices < n_items
    if keep.all():
        return sparse.csr_array(
            (matrix.data, matrix.indices, matrix.indptr), shape=(matrix.shape[0], n_items)
        )
    rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows[keep], minlength=matrix.shape[0]))])
    return sparse.csr_array(
        (matrix.data[keep], matrix.indices[keep], indptr), shape=(matrix.shape[0], n_items)
    )


@dataclass(frozen=True, slots=True)
class TrainedWidth:
    """A model-backed source in a grown pipeline: its model knows the first ``n_items`` items
    only, so it sees each query's recent and excluded items among those (an excluded new item
    is one it could never propose anyway)."""

    name: str
    source: CandidateSource
    n_items: int

    @classmethod
    def of(cls, source: CandidateSource, n_items: int) -> TrainedWidth:
        return cls(source.name, source, n_items)

    def retrieve(self, queries: Queries, k: int) -> Proposals:
        cut = replace(
            queries,
            recent=narrow(queries.recent, self.n_items),
            exclude=narrow(queries.exclude, self.n_items),
            latest=None if queries.latest is None else narrow(queries.latest, self.n_items),
        )
        return self.source.retrieve(cut, k)


def cold_reach(
    item_ids: Sequence[str],
    ids: IdMap,
    n_trained: int,
    created_ts: np.ndarray,
    new_arrivals: Sequence[str],
) -> str | None:
    """What a PUT's answer says about items of ``item_ids`` that joined after training (index
    ``n_trained`` or later), or None when there are none: they have no collaborative score, so
    only the new-arrivals sources (``new_arrivals``, their names) list them, and those need a
    ``created_at`` (``created_ts`` -1 = none)."""
    rows = ids.to_index(np.asarray(item_ids, dtype=object))
    cold = rows[rows >= n_trained]
    if len(cold) == 0:
        return None
    dated = int((created_ts[cold] >= 0).sum())
    head = (
        f"{len(cold)} item(s) new since training have no collaborative score until the next "
        "training"
    )
    if not new_arrivals:
        return (
            f"{head}, and this pipeline has no new_arrivals source to list them (rules and "
            "exclusions apply to them already)"
        )
    via = f"they reach lists through {', '.join(new_arrivals)} (newest created_at first)"
    if dated < len(cold):
        via += f"; {len(cold) - dated} without created_at cannot be ranked there"
    return f"{head}: {via}"
