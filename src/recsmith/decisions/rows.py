"""Decisions and attributions as rows for the SQL stores, and back: one place for both backends.

A served list is ONE ``decisions`` row; its shown items are packed in its ``items`` column
(``pack_items``: a compact JSON array of four arrays, ids, scores, source lists, propensities).
Storing a list then touches two B-trees (the primary key and ``(unit, served_at)``) instead of
four (§56: one row per item under two more indexes cost the writer ~75 µs a list of ~105).
Readers unpack in SQL where they filter or return item ids (``json_each`` on SQLite,
``json_array_elements_text … WITH ORDINALITY`` on PostgreSQL) and with ``json.loads`` where they
return scores: JSON written by ``repr`` and read by Python's parser gives every float64 back
exactly, which neither database's JSON-to-REAL conversion promises. "The items shown to this
unit between t0 and t1" (capping, the window rule) is one range of ``decisions_unit_served``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import chain
from json.encoder import encode_basestring
from typing import Any

import numpy as np
import pandas as pd
from pydantic_core import PydanticSerializationError, to_json

from recsmith.decisions.record import Decision, ones
from recsmith.gc_pause import paused_gc

#: Columns of ``decisions`` in insert order.
DECISION_COLUMNS = (
    "recommendation_id",
    "served_at",
    "unit",
    "unit_kind",
    "route",
    "placement",
    "release",
    "experiment",
    "variant",
    "latency_ms",
    "assignment_propensity",
    "page_view",
    "arm",
    "arm_propensity",
    "arm_context",
    "size",
    "items",
)
#: Columns of ``attributions``; ``ts`` is the event's time (µs), ``rule`` explicit or window.
ATTRIBUTION_COLUMNS = (
    "event_id",
    "recommendation_id",
    "position",
    "rule",
    "event_type",
    "value",
    "ts",
)
#: The columns of ``decisions`` a reader gets back besides the items: all but ``size`` (the item
#: count, kept for SQL over the table: an erasure counts the items it removes with it) and
#: ``items``. Adding a column here reaches the stores' selects, ``SHOWN_COLUMNS`` and
#: ``SCAN_SQL`` at once.
DECISION_HEADER = DECISION_COLUMNS[:-2]
#: A header and its packed items: what ``get_decision``, the scan and the export read.
PACKED_SELECT = ", ".join((*DECISION_HEADER, "items"))
#: ``items`` of a list with no item (the default of a column added to an older store).
NO_ITEMS = "[[],[],[],[]]"
#: What a reader gets of each shown item.
SHOWN_ITEM = ("position", "item_id", "score", "sources", "propensity")
#: What ``scan_decisions`` returns: one row per shown item (an empty list: one row, no item).
SHOWN_COLUMNS = (*DECISION_HEADER, *SHOWN_ITEM)
#: What the lookups for attribution return (``shown_in``, ``shown_to``); ``served_at`` in µs.
LOOKUP_COLUMNS = (
    "recommendation_id",
    "unit",
    "served_at",
    "position",
    "item_id",
    "release",
    "variant",
    "experiment",
    "page_view",
    "arm",
    "arm_context",
    "placement",
)
#: What capping reads of one unit's recent lists (``shows_of``): plain rows, no frame, since it
#: runs on every request and pandas' fixed cost was most of it (BENCHMARKS "Capping").
SHOWS_COLUMNS = ("recommendation_id", "item_id", "served_at", "page_view")
#: ``shows_of``'s query (``{items}``, ``{item}``: the backend's unpacking, ``UNPACK``). One unit,
#: so an equality and a range on ``decisions_unit_served``.
SHOWS_SQL = (
    "SELECT d.recommendation_id, {item}, d.served_at, d.page_view FROM decisions d{items} "
    "WHERE d.unit = {p} AND d.served_at >= {p} AND d.served_at <= {p}"
)
#: Per (experiment, variant, minute): requests answered or failed by the server, and failures
#: (``decisions.requests``); the experiment report's error-rate guardrail reads them.
REQUEST_COLUMNS = ("experiment", "variant", "minute", "requests", "errors")
#: The SELECT of a lookup, ``WHERE`` on ``d`` to be appended; ``{items}`` … as in ``SHOWS_SQL``.
LOOKUP_SQL = (
    "SELECT d.recommendation_id, d.unit, d.served_at, {position}, {item}, d.release, "
    "d.variant, d.experiment, d.page_view, d.arm, d.arm_context, d.placement "
    "FROM decisions d{items} "
)
#: How each backend unpacks a list's item ids in SQL: a table ``j`` joined to each ``decisions``
#: row ``d``, one row per item, with the item id and its position (from 1). SQLite's
#: ``json_each`` over the first array (its ``key`` counts from 0), PostgreSQL's ``WITH
#: ORDINALITY`` (counts from 1). A list with no item gives no row, as it had no item row.
UNPACK = {
    "sqlite": {
        "items": " CROSS JOIN json_each(d.items, '$[0]') j",
        "item": "j.value",
        "position": "j.key + 1",
    },
    "postgres": {
        "items": (
            " CROSS JOIN LATERAL json_array_elements_text(d.items::json -> 0) "
            "WITH ORDINALITY AS j (item_id, position)"
        ),
        "item": "j.item_id",
        "position": "j.position",
    },
}


def backend_sql(template: str, backend: str, p: str) -> str:
    """``template`` (``SHOWS_SQL``, ``LOOKUP_SQL``) for ``backend`` with placeholder ``p``."""
    return template.format(p=p, **UNPACK[backend])


#: ``scan_decisions``: headers and packed items in the order the frame lists them.
SCAN_SQL = (
    f"SELECT {PACKED_SELECT} FROM decisions WHERE served_at >= {{p}} AND served_at < {{p}} "
    "ORDER BY served_at, recommendation_id"
)

#: ``count_decisions``: how many lists were served in a time range (an index range count).
COUNT_SQL = "SELECT COUNT(*) FROM decisions WHERE served_at >= {p} AND served_at < {p}"

#: ``decision_latencies``: the timed decisions of one experiment in a time range.
LATENCY_SQL = (
    "SELECT variant, latency_ms FROM decisions WHERE experiment = {p} AND served_at >= {p} "
    "AND served_at < {p} AND latency_ms IS NOT NULL"
)
#: ``add_request_counts``: counts add to what other processes stored for the same minute.
UPSERT_REQUESTS_SQL = (
    f"INSERT INTO experiment_requests ({', '.join(REQUEST_COLUMNS)}) VALUES ({{p}}, {{p}}, {{p}}, "
    "{p}, {p}) ON CONFLICT (experiment, variant, minute) DO UPDATE SET "
    "requests = experiment_requests.requests + excluded.requests, "
    "errors = experiment_requests.errors + excluded.errors"
)
#: ``request_counts``: per variant, over the minutes that overlap the range.
REQUESTS_SQL = (
    "SELECT variant, SUM(requests), SUM(errors) FROM experiment_requests WHERE experiment = {p} "
    "AND minute >= {p} AND minute <= {p} GROUP BY variant ORDER BY variant"
)
MICROS_PER_MINUTE = 60_000_000


def minute_bounds(lo_us: int, hi_us: int) -> tuple[int, int]:
    """The first and last minute (since the epoch) overlapping ``[lo_us, hi_us)``."""
    return lo_us // MICROS_PER_MINUTE, (hi_us - 1) // MICROS_PER_MINUTE


def latency_frame(rows: Sequence[Sequence[Any]]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(list(rows), columns=["variant", "latency_ms"])
    frame["variant"] = frame["variant"].astype(object)
    frame["latency_ms"] = pd.to_numeric(frame["latency_ms"]).astype(np.float64)
    return frame


def request_frame(rows: Sequence[Sequence[Any]]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(list(rows), columns=["variant", "requests", "errors"])
    frame["variant"] = frame["variant"].astype(object)
    frame["requests"] = frame["requests"].astype(np.int64)
    frame["errors"] = frame["errors"].astype(np.int64)
    return frame


def micros_of(decision: Decision) -> int:
    return int(decision.served_at.timestamp() * 1_000_000)


#: The encoder of ``items`` (``pack_items``; the migration of older stores too): compact, floats
#: by ``repr`` (exact), non-ASCII kept as it is (half the bytes of ``\\uXXXX``). JSON has no NaN
#: or infinity, and both databases refuse the whole document in SQL (``json_each``, ``::json``)
#: if it holds Python's ``NaN``/``Infinity`` tokens: ``pack`` writes those floats as strings.
_ITEMS_JSON = json.JSONEncoder(
    ensure_ascii=False, check_circular=False, allow_nan=False, separators=(",", ":")
)
encode_items = _ITEMS_JSON.encode


def chunk_encoder(
    make: Callable[..., Callable[[Any, int], Iterable[str]]] | None,
) -> Callable[[Any, int], Iterable[str]]:
    """``encode_items`` as chunks of text: its C encoder made once by ``make`` (the standard
    library's private ``json.encoder.c_make_encoder``), because ``JSONEncoder.encode`` makes it
    again on every call (~0.5 µs of a ten-item list's ~6) with these very arguments
    (``iterencode``). Where there is none (a Python without the ``_json`` accelerator: ``make``
    is None) or it cannot be made so, the same text from ``encode_items`` itself."""
    if make is not None:
        try:
            return make(None, _ITEMS_JSON.default, encode_basestring, None, ":", ",",
                        False, False, False)  # fmt: skip
        except TypeError:  # another signature than CPython 3.11-3.13's
            pass
    return _whole


def _whole(value: Any, _level: int) -> tuple[str]:
    """``value`` as one chunk of ``encode_items`` (``chunk_encoder``'s fallback)."""
    return (encode_items(value),)


_encode_chunks = chunk_encoder(getattr(json.encoder, "c_make_encoder", None))

#: A deterministic list's propensities (``record.ones``) packed, by length.
_ONES_TEXT: dict[int, str] = {}


def _named(values: Sequence[float]) -> list[float | str]:
    """``values`` with each non-finite float as its name, ``"inf"``, ``"-inf"`` or ``"nan"``:
    the strings ``float`` (``decision_from_row``) and ``astype(float64)`` (``shown_frame``)
    read back as the same float, so ±inf round-trips and NaN reads back as NaN."""
    return [v if math.isfinite(v) else repr(float(v)) for v in values]


def pack(
    ids: Sequence[str],
    scores: Sequence[float],
    sources: Sequence[Sequence[str]],
    propensities: Sequence[float],
) -> str:
    """``[ids, scores, source lists, propensities]`` as stored in ``decisions.items``: the text
    ``_standard_pack`` writes, made by pydantic-core's Rust encoder (``to_json``) wherever that
    gives the same text. It writes each float as Ryu's shortest string that reads back as the
    same float64, the digits ``float.__repr__`` finds ~10× slower: a ten-item list packs in
    ~3.4 µs against ~7.5, most of which was its ten scores' ``repr`` (BENCHMARKS §149). The
    floats' text is checked (``_plain``) since only there can the two differ, and scores and
    propensities must be a tuple or list: ``to_json`` also writes a set, a ``Decimal`` or a
    ``Fraction`` (as a string), which the standard encoder refuses and still refuses here. Ids
    and source lists come out the same (both escape ``"``, ``\\`` and control characters alike
    and keep other characters as they are) for what ``Decision`` holds, strings in tuples;
    ``to_json`` would also write ``bytes`` or a set there, which no caller hands over. A list
    ``to_json`` cannot encode (a lone surrogate in an id) or whose floats fail the check is
    packed by ``_standard_pack``; one with a score under 1e-4 or from 1e16 up (written with an
    exponent) pays both encoders' scores, ~1.1× the standard encoder alone (rv-dec25)."""
    if type(scores) not in _ARRAYS or type(propensities) not in _ARRAYS:
        return _standard_pack(ids, scores, sources, propensities)
    try:
        scores_text = to_json(scores, inf_nan_mode="constants")
        if not _plain(scores_text):
            return _standard_pack(ids, scores, sources, propensities)
        n = len(propensities)
        if propensities is ones(n):  # every list the route records unexploring: made once a length
            chances = _ONES_JSON.get(n) or _ONES_JSON.setdefault(n, to_json(propensities))
        else:
            chances = to_json(propensities, inf_nan_mode="constants")
            if not _plain(chances):
                return _standard_pack(ids, scores, sources, propensities)
        parts = (b"[", to_json(ids), b",", scores_text, b",", to_json(sources), b",", chances, b"]")
    except PydanticSerializationError:
        return _standard_pack(ids, scores, sources, propensities)
    return b"".join(parts).decode()


#: The containers ``pack`` lets ``to_json`` write scores and propensities of (as JSON arrays).
_ARRAYS = (tuple, list)


def _plain(floats: bytes) -> bool:
    """Whether ``to_json``'s text of an array of numbers is what ``encode_items`` writes: one
    flat array of nothing but digits, signs, points and commas (no string: a ``Decimal``; no
    nested array; no ``true``/``null``; no exponent, which Python pads to two digits, ``1e-07``;
    no ``NaN``/``Infinity``, which ``pack`` names) and no ``0.0000`` (``to_json`` writes
    ``0.00001`` where ``encode_items`` writes ``1e-05``). Deleting the allowed bytes is one C
    pass (~0.4 µs for ten scores, less than the four ``in`` tests it replaced); a float this
    refuses is only packed the slower way."""
    return floats.translate(None, _NUMBER_BYTES) == b"[]" and b"0.0000" not in floats


#: The bytes of ``to_json``'s plain floats and integers.
_NUMBER_BYTES = b"0123456789-.,"


#: ``to_json``'s text of a deterministic list's propensities (``record.ones``), by length.
_ONES_JSON: dict[int, bytes] = {}


def _standard_pack(
    ids: Sequence[str],
    scores: Sequence[float],
    sources: Sequence[Sequence[str]],
    propensities: Sequence[float],
) -> str:
    """``pack``'s text by the standard library's encoder. Finite floats take the encoder's one
    C call; a list with a NaN or infinite float is encoded again with those floats named
    (``_named``): never refused for a score, as the old layout never refused one on
    PostgreSQL, nor an infinite one on SQLite."""
    try:
        if propensities is not ones(len(propensities)):
            return "".join(_encode_chunks((ids, scores, sources, propensities), 0))
        # every list the route records unexploring: "[1.0,…]" made once a length
        head = "".join(_encode_chunks((ids, scores, sources), 0))
    except ValueError:  # a NaN or infinite float
        return encode_items((ids, _named(scores), sources, _named(propensities)))
    n = len(propensities)
    tail = _ONES_TEXT.get(n) or _ONES_TEXT.setdefault(n, encode_items(propensities))
    return f"{head[:-1]},{tail}]"


def pack_items(d: Decision) -> str:
    """A list's shown items as stored in ``decisions.items`` (``pack``), position order, e.g.
    ``[["a","b"],[2.0,1.0],[["als"],[]],[1.0,0.5]]``."""
    return pack(d.item_ids, d.scores, d.sources, d.propensities)


def header_rows(decisions: Sequence[Decision]) -> list[tuple[Any, ...]]:
    """One row of ``DECISION_COLUMNS`` per decision, its items packed (``pack_items``). A list
    whose scores, sources or propensities do not match its items in number, or with a NUL in an
    item id, is refused (``ValueError`` naming it) before anything is stored. The writer's
    thread holds the GIL for all of this (the event loop waits): the checks look at the whole
    batch at once (one joined string for the NULs) and go list by list only to name a culprit."""
    if "\x00" in "".join(chain.from_iterable(d.item_ids for d in decisions)) or not all(
        len(d.scores) == len(d.sources) == len(d.propensities) == len(d.item_ids) for d in decisions
    ):
        _refuse(decisions)
    return [
        (
            d.recommendation_id,
            micros_of(d),
            d.unit,
            d.unit_kind,
            d.route,
            d.placement,
            d.release,
            d.experiment,
            d.variant,
            d.latency_ms,
            d.assignment_propensity,
            d.page_view,
            d.arm,
            d.arm_propensity,
            context_text(d.arm_context),
            len(d.item_ids),
            pack(d.item_ids, d.scores, d.sources, d.propensities),
        )
        for d in decisions
    ]


def _refuse(decisions: Sequence[Decision]) -> None:
    """Raise for the first of ``decisions`` that ``header_rows`` refuses, naming it."""
    for d in decisions:
        n = len(d.item_ids)
        if any("\x00" in item for item in d.item_ids):
            # PostgreSQL keeps "\u0000" in json text but refuses it on every later unpacking
            raise ValueError(f"decision {d.recommendation_id}: an item_id holds a NUL character")
        if not len(d.scores) == len(d.sources) == len(d.propensities) == n:
            raise ValueError(
                f"decision {d.recommendation_id}: {n} items but {len(d.scores)} scores, "
                f"{len(d.sources)} source lists and {len(d.propensities)} propensities"
            )


def decision_from_row(row: Sequence[Any]) -> Decision:
    """A ``Decision`` from its stored row: ``DECISION_HEADER`` and the packed items
    (``PACKED_SELECT``)."""
    rid, served, unit, kind, route, placement, release, experiment, variant, latency = row[:10]
    chance, page_view = row[10], row[11]
    arm, arm_chance, arm_context = row[12:15]
    item_ids, scores, sources, propensities = json.loads(row[15])
    return Decision(
        recommendation_id=rid,
        served_at=pd.Timestamp(int(served), unit="us", tz="UTC").to_pydatetime(),
        unit=unit,
        unit_kind=kind,
        route=route,
        placement=placement,
        release=release,
        experiment=experiment,
        variant=variant,
        item_ids=tuple(map(str, item_ids)),
        scores=tuple(map(float, scores)),
        sources=tuple(map(tuple, sources)),
        propensities=tuple(map(float, propensities)),
        latency_ms=None if latency is None else float(latency),
        assignment_propensity=None if chance is None else float(chance),
        page_view=page_view,
        arm=arm,
        arm_propensity=None if arm_chance is None else float(arm_chance),
        arm_context=None if arm_context is None else tuple(json.loads(arm_context)),
    )


def context_text(context: Sequence[float] | None) -> str | None:
    """A decision's ``arm_context`` as stored: a JSON array (NULL without a contextual arm)."""
    return None if context is None else json.dumps([float(x) for x in context])


#: Lists whose packed items ``shown_frame`` parses in one ``json.loads``: a C call that holds
#: the GIL throughout, so a server's background read of its decision window (``decisions.window``)
#: stalls the event loop for as long as one call lasts — 0.2 s for a window of 15,000 lists in
#: one call (BENCHMARKS §131), ~10 ms for a chunk of this many, at no cost to the total.
PARSE_CHUNK = 1000


def _packed_items(found: Sequence[Sequence[Any]]) -> Iterator[Any]:
    """Each row's packed items (its last column) parsed, ``PARSE_CHUNK`` rows a ``json.loads``."""
    for start in range(0, len(found), PARSE_CHUNK):
        chunk = found[start : start + PARSE_CHUNK]
        yield from json.loads(f"[{','.join(row[-1] for row in chunk)}]")


def _item_columns(packed: Sequence[Any]) -> list[list[Any]]:
    """``SHOWN_ITEM``'s columns of the parsed lists, one value per shown item in position order
    (sources joined with ``|``); a list with no item gives one None in each. Chained in C: a
    window holds millions of items."""
    none = (None,)
    return [
        list(chain.from_iterable(range(1, len(p[0]) + 1) if p[0] else none for p in packed)),
        list(chain.from_iterable(p[0] or none for p in packed)),
        list(chain.from_iterable(p[1] or none for p in packed)),
        list(chain.from_iterable(map("|".join, p[2]) if p[2] else none for p in packed)),
        list(chain.from_iterable(p[3] or none for p in packed)),
    ]


def shown_frame(found: Sequence[Sequence[Any]]) -> pd.DataFrame:
    """``scan_decisions``' frame from ``SCAN_SQL``'s rows (a header and its packed items each):
    one row per shown item in position order (``SHOWN_COLUMNS``; a list with no item gives one
    row whose item columns are None), times as UTC timestamps, positions nullable integers,
    sources joined with ``|``.

    The header's columns are made once a list and repeated for its items (``take``), so their
    conversions (most of them into strings) run over the lists, not over every shown item, and
    no tuple is built a shown item: 0.68× the CPU of building the rows whole. Built without
    cyclic collections (``paused_gc``): the parsed lists are hundreds of thousands of
    containers, none of them cyclic garbage, that each full pass they would trigger walks
    holding the GIL (three passes of 11-57 ms CPU for 15,000 lists, a server's event loop
    stalled meanwhile: BENCHMARKS §131). The frame is built in a call of its own
    (``_built_frame``) so that those lists are freed when it returns, still inside the pause:
    left alive until after it, the young pass that the next allocation runs would walk them all
    (~390,000 containers for 24,000 lists, ~90 ms holding the GIL: BENCHMARKS §131)."""
    with paused_gc():
        return _built_frame(found)


def _built_frame(found: Sequence[Sequence[Any]]) -> pd.DataFrame:
    """``shown_frame``'s frame, built with the collector paused (its caller's pause)."""
    packed = list(_packed_items(found))
    heads = [row[:-1] for row in found]
    frame = pd.DataFrame.from_records(heads, columns=list(DECISION_HEADER))
    sizes = np.fromiter((max(len(p[0]), 1) for p in packed), np.int64, len(packed))
    frame = frame.take(np.arange(len(packed)).repeat(sizes)).reset_index(drop=True)
    position, item_id, score, sources, propensity = _item_columns(packed)
    served = pd.to_datetime(frame["served_at"].astype(np.int64), unit="us", utc=True)
    frame["served_at"] = served.astype("datetime64[ns, UTC]")
    frame["latency_ms"] = pd.to_numeric(frame["latency_ms"]).astype(np.float64)  # None: NaN
    chance = pd.to_numeric(frame["assignment_propensity"]).astype(np.float64)
    frame["assignment_propensity"] = chance
    frame["arm_propensity"] = pd.to_numeric(frame["arm_propensity"]).astype(np.float64)
    frame["position"] = pd.array(position, dtype="Int64")
    frame["item_id"] = pd.Series(item_id)
    # astype, not to_numeric: a non-finite float is packed as its name ("nan", ``pack``)
    frame["score"] = pd.Series(score, dtype=object).astype(np.float64)
    frame["sources"] = pd.Series(sources)
    frame["propensity"] = pd.Series(propensity, dtype=object).astype(np.float64)
    return frame


def lookup_rows(d: Decision) -> pd.DataFrame:
    """A decision not stored yet as the rows a lookup returns (``LOOKUP_COLUMNS``)."""
    n = len(d.item_ids)
    return pd.DataFrame(
        {
            "recommendation_id": [d.recommendation_id] * n,
            "unit": [d.unit] * n,
            "served_at": np.full(n, micros_of(d), dtype=np.int64),
            "position": np.arange(1, n + 1, dtype=np.int64),
            "item_id": list(d.item_ids),
            "release": [d.release] * n,
            "variant": [d.variant] * n,
            "experiment": [d.experiment] * n,
            "page_view": [d.page_view] * n,
            "arm": [d.arm] * n,
            "arm_context": [context_text(d.arm_context)] * n,
            "placement": [d.placement] * n,
        }
    )


def lookup_frame(rows: Sequence[Sequence[Any]]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(list(rows), columns=list(LOOKUP_COLUMNS))
    frame["served_at"] = frame["served_at"].astype(np.int64)
    frame["position"] = frame["position"].astype(np.int64)
    return frame


def attribution_rows(frame: pd.DataFrame) -> list[tuple[Any, ...]]:
    """Rows for ``attributions`` from a frame with ``ATTRIBUTION_COLUMNS`` (NaN -> NULL)."""
    cols: list[list[Any]] = []
    for name in ATTRIBUTION_COLUMNS:
        values = frame[name].to_numpy(dtype=object)
        cols.append(np.where(pd.isna(values), None, values).tolist())
    return list(zip(*cols, strict=True))


def attribution_frame(rows: Sequence[Sequence[Any]]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(list(rows), columns=list(ATTRIBUTION_COLUMNS))
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce").astype(np.float64)
    frame["ts"] = frame["ts"].astype(np.int64)
    frame["position"] = frame["position"].astype("Int64")
    return frame
