"""A release's store cut: which of a known user's stored events a request still has to read.

A list never shows an item the user has an event with: the release's training items of the user
(``ModelBundle.seen``) plus every item the store holds for them (``EventStore.user_items``), read
per request so that an event ingested a moment ago counts. For a user the release knows, the
store's events from before its training are already in ``seen`` — when training read them all
and learnt every one of their (user, item) pairs — so reading them again per request only costs
(BENCHMARKS §90: the rows of ~20 items a user, and their id lookups). The cut says from when
events are new to the release:

- ``take`` runs before training reads the store: the store's identity (a digest of its privacy
  salt, never the salt) and the time now less ``MARGIN_US`` (an ingesting process stamps
  ``received_at`` before its commit, possibly on another host's clock: an event stamped before
  the cut must have been committed before the read began; skew and commit lag beyond the margin
  break that, the one condition this rests on).
- ``vouch`` records the cut in the release's manifest only if every (user, item) pair of the
  events read of a user it knows has an entry in its matrix of training items; a pair training
  dropped (a weight that is not finite, a net-negative sum, a decay that reached 0) would be in
  the store and not in ``seen``, so the release then keeps no cut (it says how many pairs were
  missing) and every request reads the user's whole history, as before. The callers that train
  on a whole store take and vouch: ``train`` (a pipeline or a model) from a store, ``retrain``,
  ``quickstart``.
- ``received_since`` is serving's bound: the cut for a user the release knows, served against
  the store it was trained from; None (read everything) otherwise.

Deleting events never breaks it: what the store lost, ``seen`` still excludes, as it did before
(a restored backup, retention, an erasure — and an erased person is answered without any store
read at all). A store that gained old events after the read (an import) stamps them when it
receives them, after the cut.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from recsmith.bundle import ModelBundle
from recsmith.store.base import EventStore

#: The manifest entry (``{"store", "received_since_us"}``, or ``{"uncovered_pairs"}``).
MANIFEST_KEY = "store_cut"
#: How long before training's read the cut lies: covers the lag between an ingesting process
#: stamping ``received_at`` and its commit, and the writers' clock skew from the trainer's. The
#: events received in this margin are read per request although the release has them.
MARGIN_US = 10 * 60 * 1_000_000


def store_identity(store: EventStore) -> str:
    """Which store this is: a digest of its privacy salt (random per store, copied by a backup),
    so a release trained on one store is not served with a cut against another."""
    return hashlib.sha256(b"recsmith store identity\0" + store.privacy_salt()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class StoreCut:
    """Taken just before training reads every event of ``store`` (``take``)."""

    store: str
    received_since_us: int

    @classmethod
    def take(cls, store: EventStore) -> StoreCut:
        return cls(store_identity(store), time.time_ns() // 1000 - MARGIN_US)

    def vouch(self, release: Any, events: pd.DataFrame) -> None:
        """Record the cut in the manifest of ``release`` (a pipeline or a model bundle) trained
        on ``events`` (every event of the store, read after ``take``) when its interaction
        matrix holds every stored (user, item) pair of a user it knows; else the count of
        pairs it lacks, and no cut."""
        bundle = getattr(release, "bundle", release)
        missing = uncovered_pairs(events, bundle)
        release.manifest[MANIFEST_KEY] = (
            {"uncovered_pairs": missing}
            if missing
            else {"store": self.store, "received_since_us": self.received_since_us}
        )


def uncovered_pairs(events: pd.DataFrame, bundle: ModelBundle) -> int:
    """How many of ``events``' rows of a user ``bundle`` knows have no entry in its matrix of
    training items (``seen``): its pair was dropped, or its item is one the release does not
    know, which a catalogue change may add to its index later (``catalog_growth``), so that a
    request would exclude it by then. A user it does not know is read in full per request."""
    users = events["user_id"].to_numpy(dtype=object)
    named = ~pd.isna(users)
    u = bundle.users.to_index(users[named]).astype(np.int64)
    i = bundle.items.to_index(events["item_id"].to_numpy(dtype=object)[named]).astype(np.int64)
    known = u >= 0
    u, i = u[known], i[known]
    seen = bundle.seen
    n_items = max(seen.shape[1], 1)
    rows = np.repeat(np.arange(seen.shape[0], dtype=np.int64), np.diff(seen.indptr))
    entries = rows * n_items + seen.indices.astype(np.int64)
    covered = (i >= 0) & np.isin(u * n_items + i, entries)
    return int((~covered).sum())


def received_since(served: Any, identity: str | None, user_id: str) -> int | None:
    """The ``received_at`` from which ``user_id``'s stored items are needed beside what
    ``served`` (a pipeline or a model bundle) knows: its cut, for a user it knows, served with
    the store it was trained from (``identity``); None — every stored item — otherwise."""
    cut = served.manifest.get(MANIFEST_KEY)
    if cut is None or identity is None or cut.get("store") != identity:
        return None
    users = getattr(served, "bundle", served).users
    return int(cut["received_since_us"]) if users.index_of(user_id) >= 0 else None
