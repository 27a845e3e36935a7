"""Group commit for ``POST /v1/events``: the requests in flight together share one validation and
one store transaction.

Browsers and mobile SDKs send events one at a time, and one event alone pays the whole fixed cost
of a batch: a validation call (record by record for a small group, ``events.validate_small``; a
pandas frame either way) and a store transaction with its fsync. Here
each request's records wait in a ``gather.Gatherer`` (blocking mode): while one group is being
validated and committed in the thread pool, the requests that arrive gather, and the next commit
takes them all. So a lone request on an idle server is committed at once (no timer), and under
load the group grows with the number of requests waiting instead of the number of commits. Where
the store has one writer at a time (SQLite), each server process takes its group only once its
turn to write has come (``EventStore.writer_turn``), so the requests that arrived while the other
processes were committing join it.

Every request is still answered only after the commit that holds its events (acknowledged means
durable), with its own counts and rejection indices. A group that fails for a reason tied to its
content is retried request by request, so one request's bad records cannot fail another's; a store
that is down fails the whole group at once (retrying each request would only wait on it again).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from recsmith.config import EventSettings
from recsmith.decisions.attribution import Attributor
from recsmith.errors import StoreUnavailable
from recsmith.events.schema import IngestResult
from recsmith.serving.batch import ingest_records
from recsmith.serving.gather import Gatherer
from recsmith.store.base import EventStore
from recsmith.store.ingest import OnAttributed, OnStored, ingest_event_batches

if TYPE_CHECKING:
    from recsmith.serving.online_state import OnlineState

#: Requests per group commit at most (each holds up to ``serving.max_batch`` records).
MAX_GROUP = 64


def _retry_alone(exc: Exception) -> bool:
    return not isinstance(exc, StoreUnavailable)


class GroupCommit:
    """See module docstring. One per server process."""

    def __init__(
        self,
        store: EventStore,
        settings: EventSettings,
        *,
        source: str,
        on_stored: OnStored | None = None,
        max_group: int = MAX_GROUP,
        attributor: Attributor | None = None,
        on_attributed: OnAttributed | None = None,
        state: OnlineState | None = None,
    ) -> None:
        self._store = store
        self._state = state  # where identify events move visitors' recent items
        self._settings = settings
        self._source = source
        self._on_stored = on_stored
        self._attributor = attributor
        self._on_attributed = on_attributed
        self._gatherer: Gatherer[Sequence[Any], IngestResult] = Gatherer(
            self._commit,
            max_batch=max_group,
            blocking=True,
            split=_retry_alone,
            turn=store.writer_turn,
        )

    async def ingest(self, records: Sequence[Any]) -> IngestResult:
        """Store one request's records (parsed JSON values) with the others waiting; returns once
        they are durable, with indices relative to ``records``."""
        return await self._gatherer.submit(records)

    def _commit(self, group: list[Sequence[Any]]) -> list[IngestResult]:
        """One validation and one append for the JSON objects of every request in ``group``; each
        request's other values are rejected at their own index by ``ingest_records``."""
        objects = [[r for r in records if isinstance(r, dict)] for records in group]
        results = ingest_event_batches(
            self._store,
            objects,
            self._settings,
            source=self._source,
            on_stored=self._on_stored,
            attributor=self._attributor,
            on_attributed=self._on_attributed,
            state=self._state,
        )
        return [
            ingest_records(self._store, records, lambda _, done=result: done, source=self._source)
            for records, result in zip(group, results, strict=True)
        ]
