"""The EventStore interface that every backend implements and the contract suite checks.

Events go in as a validated canonical frame (``events.schema.EVENT_COLUMNS``) and come out in
columnar chunks; ids stay strings. ``append`` is idempotent on ``event_id`` and durable once it
returns.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, get_args, runtime_checkable

import numpy as np
import pandas as pd

from recsmith.config import Scope
from recsmith.decisions.record import Decision
from recsmith.events.latest import Signal
from recsmith.events.schema import EVENT_COLUMNS, Item, Rejection, User
from recsmith.exploration.arms import ArmCounts
from recsmith.privacy.marks import Mark
from recsmith.store.outage import Guarded, Outage, guarded

if TYPE_CHECKING:  # governance.audit builds on this module
    from recsmith.governance.audit import AuditRecord

#: The scopes an API key may hold. ``admin`` implies the others.
SCOPES: tuple[str, ...] = get_args(Scope)


@dataclass(frozen=True, slots=True)
class AppendResult:
    """How many events of a batch were new, and how many were already stored (or repeated in it).

    ``new`` marks, per row of the appended frame, the rows this call stored: when several requests
    share one append (group commit), it says which request's events were new and which were
    duplicates, which the two totals alone cannot."""

    inserted: int
    duplicates: int
    new: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool), compare=False)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A refused record as stored: when, from where, why, and the raw payload (a marker with
    its size and start when it was too large: ``store.dead_letters.kept_payload``)."""

    received_at: datetime
    source: str
    record_index: int
    errors: list[dict[str, str]]
    payload: dict[str, Any]
    #: the row's id in the store (what a replay removes)
    letter_id: int = 0

    def to_json(self) -> dict[str, Any]:
        """What ``deadletters list --json`` and ``GET /v1/admin/dead-letters`` show."""
        return {
            "id": self.letter_id,
            "received_at": self.received_at.isoformat(),
            "source": self.source,
            "record_index": self.record_index,
            "errors": self.errors,
            "payload": self.payload,
        }


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored API key: only the hash of the secret is kept.

    ``revoked`` without ``revoked_at`` is a key revoked before revocation times were kept."""

    key_id: str
    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    revoked: bool = False
    revoked_at: datetime | None = None
    expires_at: datetime | None = None

    def allows(self, scope: str) -> bool:
        return not self.revoked and (scope in self.scopes or "admin" in self.scopes)

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


@runtime_checkable
class EventStore(Protocol):
    """Durable storage for events, the catalog, users, dead letters and API keys."""

    url: str
    #: Which kinds of call (read, write) fail now: operational failures raise
    #: ``StoreUnavailable`` and are logged once per outage (``store.outage``).
    outage: Outage
    #: True for an embedded store whose reads take microseconds (the server then reads it on its
    #: event loop); False for a networked one (read from the thread pool).
    local: bool
    #: True for a store whose ``append`` inserts ``plain_rows`` when given and then never reads
    #: the frame, which the caller may leave out (None); False for one that reads the frame.
    binds_rows: bool

    def append(
        self, events: pd.DataFrame | None, plain_rows: Sequence[tuple[Any, ...]] | None = None
    ) -> AppendResult:
        """Store validated events; an ``event_id`` already stored (or repeated) counts as a
        duplicate. ``plain_rows``: the same events as tuples in ``EVENT_COLUMNS`` order, where
        the caller has them (a small group, ``events.validate_small_rows``); a store that
        ``binds_rows`` inserts from them instead of reading the frame (``store.append_rows``),
        so a caller with rows need not build the frame (``events`` None). ``events`` is required
        otherwise."""
        ...

    def scan(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        types: Collection[str] | None = None,
        batch_size: int = 100_000,
    ) -> Iterator[pd.DataFrame]:
        """Events with ``since <= ts < until`` in time order, as canonical frames of ``batch_size``
        rows."""
        ...

    def count_events(self) -> int: ...

    def events_per_minute(self, since: datetime, until: datetime) -> list[tuple[int, int]]:
        """``(minute, events)`` for each minute of event time in ``[since, until)`` that has
        events, ``minute`` being ``ts // 60 s`` in microseconds: counted in SQL over the ts
        index, so the console's overview reads at most a row per minute, not the events."""
        ...

    def events_by_id(self, event_ids: Sequence[str]) -> pd.DataFrame:
        """The stored events with these ids, as a canonical frame (any order; unknown ids are
        left out): what an ingested batch is compared with to tell a re-send from a reused id."""
        ...

    def contexts_by_id(self, event_ids: Sequence[str]) -> dict[str, str | None]:
        """The stored ``context`` of each of these ids that is stored (unknown ids are left out).
        An import's rows without an event_id carry a content id, a hash of every compared field
        but the context (``validate.content_event_ids``), so a stored one of them can differ
        from its re-send in its context only: this reads two columns, not whole events
        (``reused_ids``)."""
        ...

    def user_items(self, user_id: str, *, by_time: bool = False) -> list[str]:
        """Distinct items a user has any event with (for excluding what they already saw), in
        no promised order; ``by_time``: oldest first by each one's latest event
        (``user_items_sql``: what a user tower or a sequence model pools), a dearer read that
        only such a release asks for (``ModelBundle.history_in_time_order``)."""
        ...

    def users_items(self, user_ids: Sequence[str], *, by_time: bool = False) -> list[list[str]]:
        """``user_items`` of each of ``user_ids``, in their order (a user asked twice gets two
        lists, an unknown one ``[]``), read by one query: the served requests of a coalesced
        group ask for their users' items together (``serving.stored_items``)."""
        ...

    def users_items_weighed(
        self, user_ids: Sequence[str], signal: Signal
    ) -> list[tuple[list[str], list[str]]]:
        """For each of ``user_ids`` (in their order, as ``users_items``): its items oldest first
        (``by_time``'s list), and those it rated 0 or below (``user_items_sql.weighs_above_zero``
        of the pair's newest event, under ``signal``: ``events.latest.signal_of``), by one query.
        Every item is seen; only the others are the user's liked history, which a release scoring
        a user from their items reads (``ModelBundle.weighs_history``, issue #15): the store's
        plain read knows no weights. A dearer read (each event's type and value, not the index
        alone), which only such a release asks for."""
        ...

    # --- erasure --- (``recsmith.privacy``: erase, export, consent marks, retention)

    def privacy_salt(self) -> bytes:
        """The store's salt for person hashes (``privacy.marks``), created on first call."""
        ...

    def privacy_marks(self, since_us: int = 0) -> list[Mark]:
        """Marks (erasure, consent) written at or after ``since_us`` (the store's clock)."""
        ...

    def set_privacy_mark(self, mark: Mark) -> None:
        """Store a person's mark, replacing the one they had."""
        ...

    def erase_person(self, user_id: str, mark: Mark) -> dict[str, int]:
        """In one transaction: delete every row naming ``user_id`` (events, profile, decisions
        and their shown items, attributions, dead letters that name them) and store ``mark``;
        returns the rows removed by kind."""
        ...

    def person_events(self, user_id: str) -> pd.DataFrame:
        """The person's events, oldest first (an export)."""
        ...

    def person_decisions(self, unit: str) -> list[Decision]:
        """The lists served to ``unit``, oldest first (an export)."""
        ...

    def link_alias(self, alias: str, user_id: str, kind: str) -> tuple[str, str]:
        """Link a visitor's id to a user by ``privacy.identity``'s rule, in one transaction;
        returns the outcome (``linked``, ``already``, ``conflict``, ``self``) and the user the
        alias belongs to now."""
        ...

    def unlink_alias(self, alias: str, user_id: str) -> bool:
        """Remove the link of ``alias`` to ``user_id``; False when there was none."""
        ...

    def aliases_of(self, user_id: str) -> list[tuple[str, str, int]]:
        """(alias, kind, linked_at µs) of the user's aliases, oldest first."""
        ...

    def alias_map(self) -> dict[str, str]:
        """Every alias with its user (a training maps visitor events with it)."""
        ...

    def delete_events_before(self, ts: datetime) -> int:
        """Retention: events before ``ts`` and their attributions; returns the events removed."""
        ...

    def delete_dead_letters_before(self, ts: datetime) -> int:
        """Retention: dead letters received before ``ts``; returns how many."""
        ...

    def upsert_items(self, items: Sequence[Item]) -> int: ...

    def get_item(self, item_id: str) -> Item | None: ...

    def items(self) -> list[Item]: ...

    def items_changed_since(
        self, since_us: int, skip: Mapping[str, int] | None = None
    ) -> list[tuple[Item, int]]:
        """Items written at or after ``since_us`` (µs since the epoch, the store's clock), each
        with its write time, leaving out those whose (id, write time) is in ``skip``: how servers
        carry catalogue changes into the deployed pipeline without a retrain
        (``serving.catalog_sync``). Skipped rows are never turned into ``Item``s, so re-reading a
        window after a bulk import stays cheap."""
        ...

    def upsert_users(self, users: Sequence[User]) -> int: ...

    def get_user(self, user_id: str) -> User | None: ...

    def users(self) -> list[User]:
        """Every stored profile, by id (training reads them for the ranker's profile features)."""
        ...

    # --- dead letters ---

    def add_dead_letters(self, rejections: Sequence[Rejection], source: str) -> None: ...

    def dead_letters(
        self,
        limit: int = 100,
        *,
        since: datetime | None = None,
        reason: str | None = None,
        after_id: int = 0,
    ) -> list[DeadLetter]:
        """The first ``limit`` dead letters, oldest first, received at or after ``since``, whose
        errors contain the text ``reason`` (case-sensitive), with ids above ``after_id`` (to page
        through them)."""
        ...

    def dead_letter_summary(self, since: datetime, latest: int) -> tuple[int, list[DeadLetter]]:
        """How many dead letters arrived at or after ``since``, and the newest ``latest`` of
        them, newest first: what the console's overview shows (one count, not every row)."""
        ...

    def delete_dead_letters(self, letter_ids: Sequence[int]) -> int:
        """Remove these dead letters (a replay that stored them); returns how many were there."""
        ...

    def dead_letter_sources(self, sources: Sequence[str]) -> set[str]:
        """Which of ``sources`` some dead letter names: a stream message redelivered after its
        record was dead-lettered is done, not refused twice (``recsmith.streaming``)."""
        ...

    def delete_user(self, user_id: str) -> int:
        """Remove a user's events and profile (GDPR erasure); returns the number of events
        removed."""
        ...

    # --- keys ---

    def add_api_key(self, key: ApiKey, key_hash: str) -> None: ...

    def api_keys(self) -> list[ApiKey]:
        """Every key, oldest first (never a hash or a secret)."""
        ...

    def find_api_key(self, key_hash: str) -> ApiKey | None: ...

    def revoke_api_key(self, key_id: str, at: datetime) -> ApiKey | None:
        """Mark the key revoked at ``at`` (a key revoked already keeps its first time); the key
        as stored afterwards, or None when no key has this id."""
        ...

    # --- audit --- (``recsmith.governance.audit``)

    def append_audit(self, records: Sequence[AuditRecord]) -> None:
        """Add records to the append-only ``audit_log`` (the table refuses UPDATE and DELETE)."""
        ...

    def scan_audit(
        self, since: datetime | None = None, action: str | None = None, limit: int = 1000
    ) -> list[AuditRecord]:
        """The latest ``limit`` records at or after ``since`` whose action is ``action`` or
        starts with ``action + "."`` (``key`` finds ``key.create`` and ``key.revoke``), oldest
        first."""
        ...

    # the decision log and attributions (``recsmith.decisions``)

    def append_decisions(self, decisions: Sequence[Decision]) -> int:
        """Store served lists; a ``recommendation_id`` already stored is skipped (a writer may
        retry a batch whose commit failed). Returns how many were new."""
        ...

    def get_decision(self, recommendation_id: str) -> Decision | None: ...

    def scan_decisions(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> pd.DataFrame:
        """Decisions served ``since <= served_at < until``, one row per shown item
        (``decisions.rows.SHOWN_COLUMNS``; a list of no items is one row without an item)."""
        ...

    def count_decisions(self, since: datetime | None = None, until: datetime | None = None) -> int:
        """How many decisions (lists, not items) were served ``since <= served_at < until``."""
        ...

    def shown_in(self, recommendation_ids: Sequence[str]) -> pd.DataFrame:
        """The shown items of these decisions (``decisions.rows.LOOKUP_COLUMNS``)."""
        ...

    def shown_to(self, units: Sequence[str], since_us: int, until_us: int) -> pd.DataFrame:
        """Items shown to these units between the two times (µs, both included)."""
        ...

    def shows_of(
        self, unit: str, since_us: int, until_us: int
    ) -> list[tuple[str, str, int, str | None]]:
        """``decisions.rows.SHOWS_COLUMNS`` of every item shown to ``unit`` between the two
        times (µs, both included), as plain rows: the per-request read of capping."""
        ...

    def delete_decisions_before(self, ts: datetime) -> int:
        """Retention: drop decisions served before ``ts``, attributions of events before it and
        request counts of minutes before it; returns the decisions removed."""
        ...

    def decision_latencies(
        self, experiment: str, since: datetime | None = None, until: datetime | None = None
    ) -> pd.DataFrame:
        """``variant`` and ``latency_ms`` of ``experiment``'s decisions served in
        ``[since, until)`` that have a latency (one row per decision)."""
        ...

    def add_request_counts(self, counts: Sequence[tuple[Any, ...]]) -> None:
        """Add ``decisions.rows.REQUEST_COLUMNS`` rows to the stored per-minute counts (several
        server processes add to the same minute)."""
        ...

    def request_counts(
        self, experiment: str, since: datetime | None = None, until: datetime | None = None
    ) -> pd.DataFrame:
        """Per ``variant`` of ``experiment``: ``requests`` and ``errors`` summed over the minutes
        in ``[since, until)``."""
        ...

    # --- bandit state ---

    def add_arm_counts(self, counts: Sequence[tuple[str, int, int, int]]) -> None:
        """Add ``(arm, shown, clicks, purchases)`` increments to the shared bandit counts
        (``exploration.arm_rows``): every worker and replica adds what it saw."""
        ...

    def arm_counts(self, version: int = 0) -> ArmCounts:
        """Every arm's counts, as the snapshot exploration serves from."""
        ...

    def add_linear_cells(self, cells: Sequence[tuple[str, str, int, float]]) -> None:
        """Add ``(model, arm, cell, value)`` increments to the contextual bandit's shared sums
        (``exploration.linear_rows``), as ``add_arm_counts`` adds counts."""
        ...

    def linear_cells(self, model: str) -> list[tuple[str, int, float]]:
        """``(arm, cell, total)`` of every stored sum of ``model``."""
        ...

    def append_attributions(self, attributions: pd.DataFrame) -> int:
        """Store ``decisions.rows.ATTRIBUTION_COLUMNS`` rows; an event attributed already keeps
        its first attribution."""
        ...

    def scan_attributions(self, since: datetime | None = None) -> pd.DataFrame:
        """Attributions of events at or after ``since``."""
        ...

    def ping(self) -> bool:
        """True when the backend answers a query on its tables (readiness probe)."""
        ...

    def heartbeat(self) -> None:
        """Rewrite the store's one heartbeat row (never an event): readiness probes the write
        path with it, since a store can answer reads while refusing every write (disk full,
        read-only). Raises ``StoreUnavailable`` when the write fails."""
        ...

    def writer_turn(self) -> AbstractContextManager[None]:
        """Held by a group commit from before it takes its group until its transaction ended.

        A store whose writers serialise (SQLite's one write lock) hands the turn to one process at
        a time and wakes the next at once; the requests that arrived meanwhile join the group that
        waited, instead of forming a small group that then waits too. Only a speed aid: the store's
        own locking keeps writes correct without it. A no-op where writers run in parallel."""
        ...

    # --- live business rules (``recsmith.merchandising``; SQL in ``merchandising.rows``) ---

    def add_rule_set(self, document: str, set_by: str | None, at_us: int) -> int:
        """Append a rule file (JSON) as the next version, returned."""
        ...

    def rule_set_version(self) -> int:
        """The newest version (0: none yet): what every server process polls."""
        ...

    def rule_sets(self, limit: int = 1, version: int | None = None) -> list[tuple[Any, ...]]:
        """``merchandising.rows.RULE_SET_COLUMNS`` rows, newest first: the latest ``limit``,
        or only ``version``."""
        ...

    # --- sampled ranker features (``monitoring.features``; SQL in ``monitoring.feature_rows``) ---

    def append_feature_samples(self, rows: Sequence[tuple[str, int, bytes]]) -> int:
        """Store sampled feature rows ``(release, sampled_at µs, float32 bytes)``; returns how
        many."""
        ...

    def feature_samples(self, release: str, since_us: int) -> list[bytes]:
        """The feature bytes of ``release``'s rows sampled at or after ``since_us``."""
        ...

    def trim_feature_samples(self, before_us: int, keep: int) -> int:
        """Retention: delete rows sampled before ``before_us`` and all but the newest ``keep``;
        returns how many went."""
        ...

    def bulk_load(self) -> AbstractContextManager[None]:
        """Held by an import around all its appends. Into an empty events table, the secondary
        event indexes (``DEFERRED_EVENT_INDEXES``) are dropped and built once at the end, in
        one sorted pass, instead of taking a random b-tree insert per row (PostgreSQL: 1.3 of
        2.2 s per 100,000 events). Each append still commits as it goes; the indexes are back
        before the import returns, and a store opened after an import that was killed
        rebuilds them. Only a speed aid: reads are correct (slower) meanwhile."""
        ...

    def close_thread(self) -> None:
        """Let go of the calling thread's connection (its next call opens one again): a
        long-lived background thread that has stopped reading (``ShadowRunner``'s, once no
        shadow reads the stored items again) does not hold a PostgreSQL connection for the
        rest of the process."""
        ...

    def close(self) -> None: ...


#: Indexes on ``events`` that only speed reads up (the primary key stays: appends need it).
#: ``events_visitor`` finds an anonymous visitor's events (no user id, by session: an alias's
#: history at erasure); partial, so the usual event, which has a user, costs it nothing.
#: How far a reader of what changed since a time (``items_changed_since``, ``privacy_marks``)
#: looks back past the newest change it applied: a writer that stamped before that change may
#: commit after it (``serving.catalog_sync``, ``fairness.watch``, ``privacy.view``).
LOOKBACK_US = 5_000_000
DEFERRED_EVENT_INDEXES = ("events_ts", "events_user_item", "events_visitor")


class _DefersIndexes(Guarded, Protocol):
    def _defer_event_indexes(self) -> bool: ...

    def _create_schema(self) -> None: ...


@contextmanager
def indexes_deferred(store: _DefersIndexes) -> Iterator[None]:
    """``bulk_load`` of the SQL stores: ``_defer_event_indexes`` drops the deferred indexes
    (True) when the events table is empty; ``_create_schema`` (``CREATE … IF NOT EXISTS``)
    builds them again, even when the import failed."""
    deferred = store._defer_event_indexes()
    try:
        yield
    finally:
        if deferred:
            guarded("write")(type(store)._create_schema)(store)


# ---- helpers shared by the SQL backends -------------------------------------------------------


def micros(dt: datetime | None) -> int | None:
    """Unix microseconds of an aware (or UTC-naive) datetime."""
    if dt is None:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1_000_000)


def from_micros(us: int | None) -> datetime | None:
    return None if us is None else datetime.fromtimestamp(us / 1_000_000, tz=UTC)


def event_rows(events: pd.DataFrame, received_us: int) -> list[tuple[Any, ...]]:
    """Rows ready for a parameterised INSERT: NaN and missing values become NULL.

    Built column by column with numpy (a million-row import must not pay a Python step per cell);
    ``tolist`` turns numpy scalars into the plain ints and floats the drivers bind."""
    cols: list[list[Any]] = []
    for name in EVENT_COLUMNS:
        column = events[name]
        if name == "ts":
            cols.append(column.to_numpy(dtype=np.int64).tolist())
            continue
        values = column.to_numpy(dtype=np.float64 if name == "value" else object)
        cols.append(np.where(pd.isna(values), None, values).tolist())
    cols.append([received_us] * len(events))
    return list(zip(*cols, strict=True))


def frame_from_rows(rows: Sequence[Sequence[Any]]) -> pd.DataFrame:
    """A canonical event frame from SELECTed rows in ``EVENT_COLUMNS`` order."""
    if not rows:
        return empty_events()
    frame = pd.DataFrame.from_records(rows, columns=list(EVENT_COLUMNS))
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce").astype(np.float64)
    frame["ts"] = frame["ts"].astype(np.int64)
    frame["position"] = positions(frame["position"].to_numpy())
    return frame


def positions(values: np.ndarray) -> np.ndarray:
    """A list position column as validation makes it: ints, and None where absent, in an object
    array. Built as an array: a list of ints and None given to a frame becomes float64 with NaN
    (pandas infers it), so rows read back with and without a position disagreed with what was
    stored (3.0 and NaN for 3 and None)."""
    missing = pd.isna(values)
    out = np.full(len(values), None, dtype=object)
    out[~missing] = [int(v) for v in values[~missing].tolist()]
    return out


def empty_events() -> pd.DataFrame:
    """A canonical frame of no events: a copy of one built once, because building it takes 1.5 ms
    and every ingested batch of new ids looks its ids up and gets one back."""
    return _EMPTY_EVENTS.copy()


def _build_empty_events() -> pd.DataFrame:
    dtypes = {"value": np.float64, "ts": np.int64}
    return pd.DataFrame({c: np.empty(0, dtype=dtypes.get(c, object)) for c in EVENT_COLUMNS})


_EMPTY_EVENTS = _build_empty_events()


def item_row(item: Item, now_us: int) -> tuple[Any, ...]:
    return (
        item.item_id,
        json.dumps(item.categories),
        json.dumps(item.tags),
        item.text,
        json.dumps(item.properties),
        bool(item.available),
        micros(item.created_at),
        now_us,
    )


def item_from_row(row: Sequence[Any]) -> Item:
    item_id, categories, tags, text, properties, available, created_at = row[:7]
    return Item(
        item_id=item_id,
        categories=json.loads(categories),
        tags=json.loads(tags),
        text=text,
        properties=json.loads(properties),
        available=bool(available),
        created_at=from_micros(created_at),
    )


#: ``api_keys`` columns that make an ``ApiKey`` (``api_key_row`` / ``api_key_from_row``).
API_KEY_COLUMNS = (
    "key_id",
    "name",
    "scopes",
    "created_at",
    "revoked",
    "revoked_at",
    "expires_at",
)


def api_key_row(key: ApiKey) -> tuple[Any, ...]:
    return (
        key.key_id,
        key.name,
        ",".join(key.scopes),
        micros(key.created_at),
        key.revoked,
        micros(key.revoked_at),
        micros(key.expires_at),
    )


def api_key_from_row(row: Sequence[Any]) -> ApiKey:
    key_id, name, scopes, created, revoked, revoked_at, expires_at = row
    when = from_micros(created)
    assert when is not None  # a NOT NULL column
    return ApiKey(
        key_id,
        name,
        tuple(scopes.split(",")),
        when,
        bool(revoked),
        from_micros(revoked_at),
        from_micros(expires_at),
    )


#: ``dead_letters`` columns that make a ``DeadLetter`` (``dead_letter_from_row``).
#: A minute in the store's time unit (microseconds).
MINUTE_US = 60_000_000
DEAD_LETTER_COLUMNS = ("received_at", "source", "record_index", "errors", "payload", "id")


def events_per_minute_query(mark: str) -> str:
    """The GROUP BY behind ``EventStore.events_per_minute`` (``mark``: the placeholder)."""
    return (
        f"SELECT ts / {MINUTE_US}, COUNT(*) FROM events WHERE ts >= {mark} AND ts < {mark} "
        "GROUP BY 1 ORDER BY 1"
    )


def dead_letter_summary_queries(mark: str) -> tuple[str, str]:
    """The count and the newest-first SELECT behind ``EventStore.dead_letter_summary``."""
    count = f"SELECT COUNT(*) FROM dead_letters WHERE received_at >= {mark}"
    newest = (
        f"SELECT {', '.join(DEAD_LETTER_COLUMNS)} FROM dead_letters WHERE received_at >= {mark} "
        f"ORDER BY id DESC LIMIT {mark}"
    )
    return count, newest


def dead_letter_from_row(row: Sequence[Any]) -> DeadLetter:
    received, source, index, errors, payload, letter_id = row
    return DeadLetter(
        from_micros(received) or datetime.now(UTC),
        source,
        int(index),
        json.loads(errors),
        json.loads(payload),
        int(letter_id),
    )


def dead_letter_query(
    limit: int, since: datetime | None, reason: str | None, after_id: int, contains: str
) -> tuple[str, list[Any]]:
    """The SELECT behind ``EventStore.dead_letters`` and its parameters; ``contains`` is the
    backend's substring test with two placeholders (``instr(?, ?) > 0``, ``strpos(%s, %s) > 0``),
    from which the placeholder is also taken."""
    mark = "?" if "?" in contains else "%s"
    where, params = [f"id > {mark}"], [after_id]
    if since is not None:
        where.append(f"received_at >= {mark}")
        params.append(micros(since))
    if reason is not None:
        # the errors column is JSON (ASCII, quotes escaped): look for the text as JSON writes it
        where.append(contains.replace(mark, "errors", 1))
        params.append(json.dumps(reason)[1:-1])
    query = (
        f"SELECT {', '.join(DEAD_LETTER_COLUMNS)} FROM dead_letters "
        f"WHERE {' AND '.join(where)} ORDER BY id LIMIT {mark}"
    )
    return query, [*params, limit]


def first_of_each_id(events: pd.DataFrame) -> np.ndarray:
    """Mask of the first row of each event_id in a batch: a repeat inside one batch (or one group
    of batches) is a duplicate of the first, which is the one stored."""
    return ~events["event_id"].duplicated(keep="first").to_numpy()


def ids_in(ids: pd.Series, pool: Iterable[str]) -> np.ndarray:
    """``ids.isin(pool)`` through a Python set: pandas 3's ``isin`` on its arrow-backed strings
    builds a pyarrow scalar per value of ``pool``, ~15 µs each (1.6 s for a re-imported chunk
    of 100,000 ids), where a set lookup per id costs ~0.1 µs."""
    found = set(pool)
    return np.fromiter(map(found.__contains__, ids.tolist()), bool, len(ids))


def appended(first: np.ndarray, fresh: np.ndarray) -> AppendResult:
    """The result of an append that stored the rows of ``fresh`` (a subset of ``first``)."""
    inserted = int(fresh.sum())
    return AppendResult(inserted, len(first) - inserted, fresh)


def scan_bounds(since: datetime | None, until: datetime | None) -> tuple[int, int]:
    lo = micros(since)
    hi = micros(until)
    return (
        np.iinfo(np.int64).min if lo is None else lo,
        np.iinfo(np.int64).max if hi is None else hi,
    )


def user_id_list(user_ids: Sequence[str]) -> list[str]:
    """``users_items``' ids as one list, each a string: a number would be read as its text and a
    list as an array of several users (a list per element, not one per id), so a caller's bug
    is raised as it is, never a group's lists shifted onto other users."""
    ids = list(user_ids)
    if any(type(u) is not str for u in ids):
        raise TypeError("users_items takes user ids as strings")
    return ids
