"""Popularity within a user's segments: the fallback for a user with a profile and no history.

A new user who said who they are (``PUT /v1/users/{id}``, ``import --format users``) is better
served by what people like them chose than by what everyone chose, provided "people like them" are
enough people. Each declared profile property forms segments: a categorical one by its value
(``gender = F``), a numeric one by its quintile band among the profiles (``age`` band 2 of 5).

An item's score for a user is the mean, over the user's segments s, of

    (c_s(i) + m · g(i)) / (n_s + m)

where c_s(i) counts the segment's users who had item i, n_s the segment's users with any event,
g(i) = c(i) / n the item's share of all users, and m (``shrinkage``) pseudo-users drawn from
everyone: a segment of three people barely moves the global order, a segment of thousands speaks
for itself. A user without a usable profile gets exactly the global order (g), and scores are
reported times n, so they read as "users like this one who had it" and equal ``popular``'s counts
then. Ties go to the lower item index, as in ``popular``. A request for some categories takes
each category's head by the same scores and merges them, as the category tier merges popularity's
(``within``), where a segment that had none of them would only restate the global order: it
answers there only with any of them (``had_any``).

Everything is computed at training from the training events and stored in the release (counts per
segment, the band edges, and each profiled user's segment codes), so serving a profiled user costs
one dense pass over the catalogue per distinct segment combination in a batch, and a profile read
only for a user who got a profile after the release was trained.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from recsmith.features.interactions import Interactions
from recsmith.features.properties import property_columns
from recsmith.ids import IdMap
from recsmith.models.base import sparse_from_arrays, sparse_to_arrays
from recsmith.retrieval.queries import Queries
from recsmith.retrieval.sources import Proposals, first_kept, merged_heads, widest_row

#: Numeric profile properties are cut into this many bands at the profiles' quantiles.
BANDS = 5
#: The most dense scores computed at once (segment combinations × items), to bound memory.
_CHUNK_CELLS = 1 << 22
#: Each segment combination's head is kept this deep (or deeper when a request asks), and at
#: most this many combinations are kept: requests repeat a few combinations (gender × plan ×
#: age band), so after the first a request skips the pass over the catalogue.
HEAD_DEPTH = 256
HEAD_ENTRIES = 4096


@dataclass(frozen=True, slots=True, eq=False)
class SegmentPopularity:
    """See module docstring. Segment codes count from 0 over all properties; -1 = none."""

    properties: np.ndarray  # str [q] profile property names
    edges: np.ndarray  # float64 [q, BANDS - 1] band edges; NaN for a categorical property
    values: np.ndarray  # str [n_codes] each segment's value (a band is "band1" … "band5")
    column: np.ndarray  # int32 [n_codes] each segment's property
    counts: sparse.csr_array  # float32 [n_codes, n_items] c_s(i)
    members: np.ndarray  # float32 [n_codes] n_s
    popular: np.ndarray  # float32 [n_items] c(i)
    n_users: int  # n: users with any event
    shrinkage: float  # m
    profiled: IdMap  # users whose profile the release knows
    profiled_codes: np.ndarray  # int32 [len(profiled), q]
    #: combination (codes as bytes) → its best items and their scores (``_heads``)
    heads: dict[bytes, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)

    @classmethod
    def build(
        cls,
        data: Interactions,
        profiles: Mapping[str, Mapping[str, Any]],
        *,
        max_properties: int,
        shrinkage: float,
    ) -> SegmentPopularity:
        """Segments from ``profiles`` (user id → properties; users without events too, so their
        codes are in the release) and counts from ``data``'s users that have a profile."""
        ids = list(profiles)
        records = [profiles[u] for u in ids]
        columns = property_columns(records, max_properties)
        q = len(columns.names)
        codes = np.full((len(ids), q), -1, np.int32)
        edges = np.full((q, BANDS - 1), np.nan)
        values: list[str] = []
        column: list[int] = []
        for p in range(q):
            raw = columns.values[:, p]
            known = np.isfinite(raw)
            if columns.categorical[p]:
                texts = pd.Series([None if r is None else r.get(columns.names[p]) for r in records])
                names = _category_names(texts[known].astype(str), raw[known])
                local = raw - min(names)  # codes of this column count from its first value
                codes[known, p] = len(values) + local[known].astype(np.int32)
                values += [names[c] for c in sorted(names)]
                column += [p] * len(names)
            elif known.any():
                edges[p] = np.quantile(raw[known], np.linspace(0, 1, BANDS + 1)[1:-1])
                codes[known, p] = len(values) + _band(raw[known], edges[p])
                values += [f"band{b + 1}" for b in range(BANDS)]
                column += [p] * BANDS
        n_codes = len(values)
        profiled = IdMap(ids)
        at = data.users.to_index(np.asarray(ids, dtype=object))
        has = (at[:, None] >= 0) & (codes >= 0)
        user_rows = np.broadcast_to(at[:, None], codes.shape)[has]
        membership = sparse.csr_array(
            (np.ones(int(has.sum()), np.float32), (codes[has], user_rows)),
            shape=(n_codes, data.n_users),
        )
        had = (data.matrix > 0).astype(np.float32)
        counts = (membership @ had).tocsr().astype(np.float32)
        active = np.zeros(data.n_users, np.float32)
        active[np.diff(had.indptr) > 0] = 1.0
        return cls(
            columns.names,
            edges,
            np.asarray(values, dtype=str),
            np.asarray(column, np.int32),
            counts,
            (membership @ active).astype(np.float32),
            np.asarray(had.sum(axis=0)).ravel().astype(np.float32),
            int(active.sum()),
            float(shrinkage),
            profiled,
            codes,
        )

    @property
    def n_items(self) -> int:
        return len(self.popular)

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """Plain arrays for the release's array files (``from_arrays`` reads them back)."""
        return {
            f"{prefix}properties": self.properties,
            f"{prefix}edges": self.edges,
            f"{prefix}values": self.values,
            f"{prefix}column": self.column,
            **sparse_to_arrays(f"{prefix}counts.", self.counts),
            f"{prefix}members": self.members,
            f"{prefix}popular": self.popular,
            f"{prefix}n_users": np.asarray(self.n_users),
            f"{prefix}shrinkage": np.asarray(self.shrinkage),
            f"{prefix}profiled": self.profiled.to_array(),
            f"{prefix}profiled_codes": self.profiled_codes,
        }

    @classmethod
    def from_arrays(cls, prefix: str, arrays: dict[str, np.ndarray]) -> SegmentPopularity | None:
        """The table ``arrays`` saved, or None in a release trained without one."""
        if f"{prefix}popular" not in arrays:
            return None
        return cls(
            arrays[f"{prefix}properties"],
            arrays[f"{prefix}edges"],
            arrays[f"{prefix}values"],
            arrays[f"{prefix}column"],
            sparse_from_arrays(f"{prefix}counts.", arrays),
            arrays[f"{prefix}members"],
            arrays[f"{prefix}popular"],
            int(arrays[f"{prefix}n_users"]),
            float(arrays[f"{prefix}shrinkage"]),
            IdMap(arrays[f"{prefix}profiled"].astype(object)),
            arrays[f"{prefix}profiled_codes"],
        )

    def codes_of(
        self, user_ids: np.ndarray, profiles: Sequence[Mapping[str, Any] | None] | None = None
    ) -> np.ndarray:
        """int32 [n, q]: each user's segment per property (-1 none). A profile given (read from
        the store for a user the release does not know) wins over the release's own."""
        codes = np.full((len(user_ids), len(self.properties)), -1, np.int32)
        at = self.profiled.to_index(user_ids)
        codes[at >= 0] = self.profiled_codes[at[at >= 0]]
        for row, profile in enumerate(profiles or ()):
            if profile is not None:
                codes[row] = self._code(profile)
        return codes

    def _code(self, profile: Mapping[str, Any]) -> np.ndarray:
        """One profile's segment codes (a value never seen at training: no segment)."""
        out = np.full(len(self.properties), -1, np.int32)
        for p, name in enumerate(self.properties.tolist()):
            value = profile.get(name)
            if value is None:
                continue
            own = np.flatnonzero(self.column == p)
            if np.isfinite(self.edges[p, 0]):  # numeric: its band (text there is no band)
                if isinstance(value, int | float) and not isinstance(value, bool):
                    out[p] = own[0] + _band(np.asarray([float(value)]), self.edges[p])[0]
                continue
            hit = own[self.values[own] == str(value)]  # as ``property_columns`` reads values
            if len(hit):
                out[p] = hit[0]
        return out

    def scores(self, combos: np.ndarray) -> np.ndarray:
        """float64 [len(combos), n_items]: the module docstring's score, times n, for each row of
        segment codes (-1 = none)."""
        n = max(self.n_users, 1)
        share = self.popular.astype(np.float64) / n
        has = combos >= 0
        per = np.maximum(has.sum(axis=1), 1)
        rows = np.broadcast_to(np.arange(len(combos))[:, None], combos.shape)[has]
        mean = sparse.csr_array(
            (1.0 / per[rows], (rows, combos[has])), shape=(len(combos), len(self.values))
        )
        inverse = 1.0 / np.maximum(self.members.astype(np.float64) + self.shrinkage, 1e-12)
        prior = mean @ (self.shrinkage * inverse)
        # scale the few (combination, segment) weights, not the counts: a request then touches
        # only its segments' rows of ``counts``
        weights = mean @ sparse.diags_array(inverse)
        out = np.asarray((weights @ self.counts).todense()) + prior[:, None] * share[None, :]
        out[~has.any(axis=1)] = share
        return out * n

    def retrieve(
        self,
        queries: Queries,
        k: int,
        codes: np.ndarray,
        within: Sequence[np.ndarray] | None = None,
    ) -> Proposals:
        """The best ``k`` items per query that it does not exclude, by its segments' scores
        (``codes`` [n, q] from ``codes_of``; a query without any: the global order). ``within``
        (a request's categories: each one's items, sorted indices) ranks as the category tier
        does (``CategoryPopular.within``), by these scores: each category's best ``k`` (and as
        many more as a query excludes), ``merged_heads``, the first ``k`` × categories kept. The
        union of the categories cut to that sum let a segment's favourite category crowd the
        others out, so that a per-category cap left one item (rv26b: ['z0'] for books and toys
        under ``max_per_category = 1``, where the category tier gave ['b3', 'z0'])."""
        width = k + widest_row(queries.exclude)
        combos, which = np.unique(codes, axis=0, return_inverse=True)
        which = which.ravel()
        if within is None:
            width = min(width, self.n_items)
            [heads] = self._heads(combos, [None], width)
            order = np.stack([items[:width] for items, _ in heads])
            best = np.stack([scores[:width] for _, scores in heads])
            return first_kept(order[which], best[which], queries.exclude, k)
        merged = [
            merged_heads([items[:width] for items, _ in row], [scores[:width] for _, scores in row])
            for row in zip(*self._heads(combos, within, width), strict=True)
        ]
        longest = max((len(items) for items, _ in merged), default=0)
        order = np.full((len(merged), longest), -1, np.int64)  # -1 pads: ``first_kept``
        best = np.full((len(merged), longest), -np.inf)
        for row, (items, scores) in enumerate(merged):
            order[row, : len(items)], best[row, : len(items)] = items, scores
        return first_kept(order[which], best[which], queries.exclude, k * len(within))

    def had_any(self, codes: np.ndarray, within: np.ndarray) -> np.ndarray:
        """bool [n]: whether any of each row's segments (``codes`` [n, q]) had an item of
        ``within``. Where none did, its scores there are the global ones times a constant (the
        module docstring's prior), so its list there is exactly global popularity's: the tier
        says so rather than claim a segment answered. Reads only those segments' counts, by
        their slices of the CSR arrays (a loop over the few segments, not over items: scipy's
        row indexing cost ~0.3 ms a request)."""
        inside = np.zeros(self.n_items, bool)
        inside[within] = True
        indptr, indices = self.counts.indptr, self.counts.indices
        had = np.zeros(len(self.values) + 1, bool)  # the last: no segment (-1)
        for s in np.unique(codes[codes >= 0]).tolist():
            had[s] = inside[indices[indptr[s] : indptr[s + 1]]].any()
        return had[codes].any(axis=1)

    def _heads(
        self, combos: np.ndarray, pools: Sequence[np.ndarray | None], width: int
    ) -> list[list[tuple[np.ndarray, np.ndarray]]]:
        """Per pool (a category's items, sorted; None: the whole catalogue), each combination's
        best items and their scores, at least ``width`` deep where the pool holds as many. The
        heads not kept yet are computed by one dense pass over the catalogue per segment
        combination for all pools, never per user. A pool's heads are kept under its items'
        digest: the catalogue may move items between categories, and a pool is then another
        key, never a stale head."""
        scopes = [b"" if p is None else hashlib.blake2b(p.tobytes()).digest() for p in pools]
        keys = [[c.tobytes() + scope for c in combos] for scope in scopes]
        sizes = [self.n_items if p is None else len(p) for p in pools]
        missing = sorted(
            {
                j
                for row, size in zip(keys, sizes, strict=True)
                for j, key in enumerate(row)
                if key not in self.heads or len(self.heads[key][0]) < min(width, size)
            }
        )
        if missing and len(self.heads) + len(missing) * len(pools) > HEAD_ENTRIES:
            self.heads.clear()  # and the batch's own kept heads are computed again
            missing = list(range(len(combos)))
        step = max(1, _CHUNK_CELLS // max(self.n_items, 1))
        for start in range(0, len(missing), step):
            rows = missing[start : start + step]
            scores = self.scores(combos[rows])
            for pool, row_keys, size in zip(pools, keys, sizes, strict=True):
                depth = min(max(width, HEAD_DEPTH), size)
                part = scores if pool is None else scores[:, pool]
                for j, row in zip(rows, part, strict=True):
                    top = _head(row, depth)  # a pool is sorted: ties still to the lower item
                    # float64 scores: ``merged_heads`` ranks several pools' heads as one pool
                    self.heads[row_keys[j]] = (top if pool is None else pool[top], row[top])
        return [[self.heads[key] for key in row_keys] for row_keys in keys]


def _head(scores: np.ndarray, width: int) -> np.ndarray:
    """The ``width`` best items of one score row, ties to the lower index (exactly: every item
    tied at the cut is considered, not the ones a partition happened to keep)."""
    if width <= 0:
        return np.zeros(0, np.int64)
    cut = np.partition(scores, len(scores) - width)[len(scores) - width]
    pool = np.flatnonzero(scores >= cut)
    return pool[np.lexsort((pool, -scores[pool]))][:width]


def _band(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Band index 0 … BANDS-1 of each value between the quantile ``edges``."""
    return np.searchsorted(edges, values, side="right").astype(np.int32)


def _category_names(texts: pd.Series, codes: np.ndarray) -> dict[int, str]:
    """Code → value text of one categorical column (``property_columns`` coded it)."""
    return dict(zip(codes.astype(int).tolist(), texts.tolist(), strict=True))
