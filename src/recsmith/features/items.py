"""Item metadata as features: categories, tags and text turned into sparse TF-IDF vectors.

Content-based models need a vector for every catalogue item, including items nobody has touched yet
(that is how a new item gets recommended on day one). Tokens are namespaced (``cat:``, ``tag:``,
``w:``) so a category and a word with the same spelling stay different features.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from recsmith.events.schema import Item

_WORD = re.compile(r"[^\W\d_]{2,}|\d+", re.UNICODE)


@dataclass(frozen=True, slots=True)
class ItemCatalog:
    """Catalogue metadata, one row per item id (order as given)."""

    item_ids: np.ndarray  # object [n]
    categories: tuple[tuple[str, ...], ...]
    tags: tuple[tuple[str, ...], ...]
    texts: tuple[str, ...]
    available: np.ndarray  # bool [n]
    #: declared properties (brand, price, …) per item: the two-tower model's item features
    properties: tuple[Mapping[str, Any], ...] = ()

    @classmethod
    def from_items(cls, items: Sequence[Item]) -> ItemCatalog:
        return cls(
            np.asarray([it.item_id for it in items], dtype=object),
            tuple(tuple(it.categories) for it in items),
            tuple(tuple(it.tags) for it in items),
            tuple(it.text or "" for it in items),
            np.asarray([it.available for it in items], dtype=bool),
            tuple(dict(it.properties) for it in items),
        )

    def __len__(self) -> int:
        return len(self.item_ids)

    def tokens(self, row: int) -> list[str]:
        """The namespaced tokens of one item: categories, tags and lower-cased words."""
        words = _WORD.findall(self.texts[row].lower())
        return (
            [f"cat:{c.lower()}" for c in self.categories[row]]
            + [f"tag:{t.lower()}" for t in self.tags[row]]
            + [f"w:{w}" for w in words]
        )


def tfidf_vectors(
    catalog: ItemCatalog, order: np.ndarray, n_items: int, *, min_df: int = 1
) -> sparse.csr_array:
    """L2-normalised TF-IDF rows for ``n_items`` items; ``order[j]`` is the matrix row of catalogue
    entry j (-1 to skip). Items without metadata get an all-zero row."""
    counts, _ = token_counts(catalog, order, n_items)
    return tfidf_from_counts(counts, min_df=min_df)


def token_counts(
    catalog: ItemCatalog, order: np.ndarray, n_items: int, vocab: pd.Index | None = None
) -> tuple[sparse.csr_array, pd.Index]:
    """Raw token counts [n_items, len(vocabulary)] (rows as in ``tfidf_vectors``) and the
    vocabulary, one token per column. Given ``vocab`` (an earlier call's), its tokens keep their
    columns and new ones are appended: rows added later (items created after a release was
    trained) are counted without tokenising the whole catalogue again."""
    rows, toks = [], []
    for j in range(len(catalog)):  # tokenising is per item by nature; the maths below is not
        if order[j] >= 0:
            t = catalog.tokens(j)
            rows.extend([order[j]] * len(t))
            toks.extend(t)
    codes, uniques = pd.factorize(np.asarray(toks, dtype=object))
    if vocab is None:
        vocab = pd.Index(uniques, dtype=object)
    else:
        at = vocab.get_indexer(pd.Index(uniques, dtype=object))
        new = at < 0
        at[new] = len(vocab) + np.arange(int(new.sum()))
        vocab = vocab.append(pd.Index(uniques[new], dtype=object))
        codes = at[codes]
    counts = sparse.csr_array(
        (np.ones(len(codes), np.float32), (np.asarray(rows, np.int64), codes)),
        shape=(n_items, len(vocab)),
    )
    counts.sum_duplicates()
    return counts, vocab


def tfidf_from_counts(counts: sparse.csr_array, *, min_df: int = 1) -> sparse.csr_array:
    """L2-normalised TF-IDF rows of raw token ``counts`` (``token_counts``); tokens used by
    fewer than ``min_df`` items are dropped."""
    n_items = counts.shape[0]
    if counts.shape[1] == 0:
        return sparse.csr_array((n_items, 0), dtype=np.float32)
    df = np.bincount(counts.indices, minlength=counts.shape[1])
    keep = np.flatnonzero(df >= min_df)
    counts = counts[:, keep]
    idf = np.log((1.0 + n_items) / (1.0 + df[keep])) + 1.0
    tfidf = (counts @ sparse.diags_array(idf.astype(np.float32))).tocsr()
    tfidf.data = np.log1p(tfidf.data)  # damp repeated words
    norms = np.sqrt(np.asarray(tfidf.multiply(tfidf).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return (sparse.diags_array(1.0 / norms) @ tfidf).astype(np.float32).tocsr()
