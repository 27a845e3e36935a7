"""Item or user records (declared properties, categories) as bags of tokens a model can embed.

A two-tower model gives every token an embedding and a record the mean of its tokens' (an
"embedding bag"): a projection of the record's multi-hot vector. The properties are chosen as the
ranker's property features choose them (``features.properties.property_columns``: the most
declared ones, identifiers left out, numbers kept apart), so the same declared data feeds both. A
categorical value is the token ``key=value``; a number is its quintile band among the records
(``key#3``), since one embedding per distinct price or age would learn nothing shared; extra
tokens (an item's categories and tags) come ready-made. Tokens held by fewer than
``MIN_RECORDS`` records are dropped: nothing generalises from one record. A missing property
gives no token, never a constant standing for a value.

The vocabulary and band edges are learnt once, at training. The profiles' are saved with the
model, so a profile first seen when serving (a cold user's) is tokenised exactly as at training.
The items' are not: every catalogue item's vector is computed at training and saved instead, and
an item added to the catalogue later is served from the next training on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse

from recsmith.features.properties import PRICE_BANDS, property_columns

#: A token must appear in this many records to get an embedding.
MIN_RECORDS = 2

Record = Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class FeatureTokens:
    """Which properties become tokens, the numeric ones' band edges, and the token vocabulary."""

    names: np.ndarray  # str [p]: the chosen properties
    edges: np.ndarray  # float64 [p, PRICE_BANDS - 1]: band edges of numeric ones, NaN otherwise
    vocabulary: np.ndarray  # str [n_tokens], sorted

    @classmethod
    def learn(
        cls,
        records: Sequence[Record],
        max_properties: int,
        extra: Sequence[Sequence[str]] | None = None,
    ) -> FeatureTokens:
        """The tokens of ``records`` (and their ``extra`` tokens) that at least ``MIN_RECORDS``
        records hold, over the ``max_properties`` most declared properties."""
        columns = property_columns(records, max_properties)
        values = np.where(np.isfinite(columns.values), columns.values, np.nan)
        # a number no record gives a finite value has no bands (and would read as categorical)
        keep = columns.categorical | ~np.isnan(values).all(axis=0)
        names, numeric = columns.names[keep], ~columns.categorical[keep]
        edges = np.full((len(names), PRICE_BANDS - 1), np.nan)
        if numeric.any():
            quantiles = np.linspace(0, 1, PRICE_BANDS + 1)[1:-1]
            edges[numeric] = np.nanquantile(values[:, keep][:, numeric], quantiles, axis=0).T
        bags = cls(names, edges, np.zeros(0, str)).tokens(records, extra)
        counts: dict[str, int] = {}
        for bag in bags:
            for token in set(bag):
                counts[token] = counts.get(token, 0) + 1
        kept = sorted(t for t, n in counts.items() if n >= MIN_RECORDS)
        return cls(names, edges, np.asarray(kept, dtype=str))

    @property
    def n_tokens(self) -> int:
        return len(self.vocabulary)

    def tokens(
        self, records: Sequence[Record], extra: Sequence[Sequence[str]] | None = None
    ) -> list[list[str]]:
        """Each record's tokens (vocabulary or not): tokenising is per record by nature."""
        numeric = np.isfinite(self.edges[:, 0]) if len(self.names) else np.zeros(0, bool)
        out: list[list[str]] = []
        for r, record in enumerate(records):
            bag = list(extra[r]) if extra is not None else []
            for name, is_number, edges in zip(self.names, numeric, self.edges, strict=True):
                value = None if record is None else record.get(str(name))
                if value is None:
                    continue
                if not is_number:
                    bag.append(f"{name}={value}")
                elif _finite_number(value):
                    bag.append(f"{name}#{int(np.searchsorted(edges, value, 'right')) + 1}")
            out.append(bag)
        return out

    def encode(
        self, records: Sequence[Record], extra: Sequence[Sequence[str]] | None = None
    ) -> sparse.csr_array:
        """float32 [len(records), n_tokens]: each row the mean over the record's known tokens
        (1 / count at each), an all-zero row for a record with none."""
        bags = self.tokens(records, extra)
        flat = np.asarray([t for bag in bags for t in bag], dtype=str)
        rows = np.repeat(np.arange(len(bags)), [len(b) for b in bags])
        cols = np.searchsorted(self.vocabulary, flat) if self.n_tokens else np.zeros(0, np.int64)
        cols = np.minimum(cols, max(self.n_tokens - 1, 0))
        known = self.vocabulary[cols] == flat if self.n_tokens else np.zeros(len(flat), dtype=bool)
        matrix = sparse.csr_array(
            (np.ones(int(known.sum()), np.float32), (rows[known], cols[known])),
            shape=(len(bags), self.n_tokens),
        )
        matrix.sum_duplicates()
        matrix.data[:] = 1.0  # a token twice in a record (two equal tags) counts once
        sizes = np.maximum(np.diff(matrix.indptr), 1).astype(np.float32)
        return (sparse.diags_array(1.0 / sizes) @ matrix).astype(np.float32).tocsr()

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {
            f"{prefix}names": self.names,
            f"{prefix}edges": self.edges,
            f"{prefix}vocabulary": self.vocabulary,
        }

    @classmethod
    def from_arrays(cls, prefix: str, arrays: dict[str, np.ndarray]) -> FeatureTokens:
        return cls(
            np.asarray(arrays.pop(f"{prefix}names"), dtype=str),
            np.asarray(arrays.pop(f"{prefix}edges"), dtype=np.float64),
            np.asarray(arrays.pop(f"{prefix}vocabulary"), dtype=str),
        )


def _finite_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and np.isfinite(value)
