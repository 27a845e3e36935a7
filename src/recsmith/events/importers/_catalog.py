"""Catalog helpers shared by the dataset readers: tag aggregation and item chunking."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import pandas as pd

from recsmith.events.importers._common import ItemRecord, RawChunk

#: ``Item.tags`` holds at most this many; the most frequently applied tags are kept.
MAX_TAGS = 1000


def tags_by_item(items: Sequence[str], tags: Sequence[str]) -> dict[str, list[str]]:
    """Distinct tags per item, most often applied first (ties: first seen), at most ``MAX_TAGS``.

    Frequency order makes the cap keep the tags users agree on, and keeps the output deterministic.
    Vectorised because tag logs run to a million rows (ML-25M).
    """
    frame = pd.DataFrame(
        {
            "item": np.asarray(items, dtype=object),
            "tag": pd.Series(np.asarray(tags, dtype=object)).str.strip(),
        }
    )
    frame = frame[frame["tag"].notna() & frame["tag"].ne("")]
    frame["seen"] = np.arange(len(frame))
    counted = (
        frame.groupby(["item", "tag"], sort=False)["seen"]
        .agg(["size", "min"])
        .reset_index()
        .sort_values(["item", "size", "min"], ascending=[True, False, True], kind="stable")
    )
    counted = counted.groupby("item", sort=False).head(MAX_TAGS)
    keys = counted["item"].to_numpy(dtype=object)
    values = counted["tag"].to_numpy(dtype=object)
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if len(keys) else np.array([], int)
    bounds = [*starts.tolist(), len(keys)]
    return {str(keys[lo]): values[lo:hi].tolist() for lo, hi in itertools.pairwise(bounds)}


def item_chunks(
    records: Iterable[ItemRecord], source: str, chunk_rows: int
) -> Iterator[RawChunk[list[ItemRecord]]]:
    """Catalog records in chunks, offsets counting records (one per data row of ``source``)."""
    batch: list[ItemRecord] = []
    offset = 0
    for record in records:
        batch.append(record)
        if len(batch) >= chunk_rows:
            yield RawChunk(batch, offset, source)
            offset += len(batch)
            batch = []
    if batch:
        yield RawChunk(batch, offset, source)
