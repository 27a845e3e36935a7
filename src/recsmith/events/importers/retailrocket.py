"""Format ``retailrocket``: the RetailRocket e-commerce directory (Kaggle).

* ``events.csv`` (``timestamp,visitorid,event,itemid,transactionid``; Unix milliseconds): ``view``,
  ``addtocart`` and ``transaction`` become ``view``, ``add_to_cart`` and ``purchase`` events; the
  transaction id, when there is one, goes into the event context;
* ``item_properties_part*.csv`` (``timestamp,itemid,property,value``): a log of property snapshots,
  reduced to the latest value per (item, property). ``categoryid`` becomes the item's category,
  ``available`` (``1``/``0``) its availability flag, every other property (hashed names and values
  in the public release) a string property.

Any file may be stored as ``<name>.gz``. ``category_tree.csv`` is not read (no parent categories).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from recsmith.events.importers._catalog import item_chunks
from recsmith.events.importers._common import (
    ImportSource,
    ItemRecord,
    RawChunk,
    count_records,
    csv_chunks,
    need,
    require_dir,
    stem,
)

EVENT_TYPES = {"view": "view", "addtocart": "add_to_cart", "transaction": "purchase"}
#: Property rows are reduced in blocks this large: a 20-million-row log stays a few passes.
_REDUCE_ROWS = 2_000_000
_KEY = ["itemid", "property"]


def read_retailrocket(path: Path, chunk_rows: int = 100_000) -> ImportSource:
    """Events and (latest) item properties from the RetailRocket directory ``path``."""
    require_dir(path)
    events = need(path, "events.csv", "retailrocket")
    parts = sorted(
        p
        for p in path.iterdir()
        if p.is_file()
        and p.name.startswith("item_properties")
        and p.name.endswith((".csv", ".csv.gz"))
    )
    return ImportSource(
        "retailrocket",
        events=_events(events, chunk_rows),
        items=_items(parts, chunk_rows),
        total_events=count_records(events, header=True),
    )


def _context(transaction: object) -> str | None:
    return None if transaction is None else json.dumps({"transaction_id": transaction})


def _events(path: Path, chunk_rows: int) -> Iterator[RawChunk[pd.DataFrame]]:
    for offset, raw in csv_chunks(path, chunk_rows, sep=","):
        kind = raw["event"]
        # Unknown event names pass through unchanged, so the validator dead-letters them by name.
        mapped = kind.map(lambda k: EVENT_TYPES.get(k, k))
        frame = pd.DataFrame(
            {
                "user_id": raw["visitorid"],
                "item_id": raw["itemid"],
                "event_type": mapped.astype(object),
                "timestamp": raw["timestamp"],
                "context": raw["transactionid"].map(_context).astype(object),
            }
        )
        yield RawChunk(frame, offset, stem(path))


def _latest(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frame = pd.concat(frames, ignore_index=True)
    frame = frame.sort_values("ts", kind="stable")
    return frame.drop_duplicates(_KEY, keep="last")


def latest_properties(parts: list[Path]) -> pd.DataFrame:
    """The newest ``value`` of each (item, property) over all part files, sorted by item."""
    pending: list[pd.DataFrame] = []
    rows = 0
    reduced = 0
    for part in parts:
        reader = pd.read_csv(part, dtype=str, keep_default_na=False, chunksize=_REDUCE_ROWS)
        with reader:
            for chunk in reader:
                chunk["ts"] = pd.to_numeric(chunk["timestamp"], errors="coerce")
                chunk = chunk[chunk["ts"].notna()]  # an undated snapshot cannot be "latest"
                pending.append(chunk.loc[:, ["ts", "itemid", "property", "value"]])
                rows += len(chunk)
                if rows > max(_REDUCE_ROWS, 2 * reduced):  # amortised: the log shrinks as it goes
                    pending = [_latest(pending)]
                    rows = reduced = len(pending[0])
    if not pending:
        return pd.DataFrame(columns=["ts", "itemid", "property", "value"])
    return _latest(pending).sort_values(_KEY, kind="stable")


def _item(item_id: str, props: dict[str, str]) -> ItemRecord:
    record: ItemRecord = {"item_id": item_id}
    category = props.pop("categoryid", None)
    if category:
        record["categories"] = [category]
    available = props.pop("available", None)
    if available is not None:  # anything but 1/0 is left for the Item model to refuse
        record["available"] = {"1": True, "0": False}.get(available.strip(), available)
    record["properties"] = props
    return record


def _items(parts: list[Path], chunk_rows: int) -> Iterator[RawChunk[list[ItemRecord]]]:
    if not parts:
        return
    table = latest_properties(parts)
    items = table["itemid"].to_numpy(dtype=object)
    names = table["property"].to_numpy(dtype=object)
    values = table["value"].to_numpy(dtype=object)
    starts = np.flatnonzero(np.r_[True, items[1:] != items[:-1]]) if len(items) else []
    bounds = [*starts, len(items)]

    def records() -> Iterator[ItemRecord]:
        for lo, hi in itertools.pairwise(bounds):
            yield _item(items[lo], dict(zip(names[lo:hi], values[lo:hi], strict=True)))

    yield from item_chunks(records(), stem(parts[0]), chunk_rows)
