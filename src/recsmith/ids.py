"""Ids: what an external id may hold, and ``IdMap``, the one translator to dense int32 indices.

Models only ever see dense indices; every boundary (CLI, HTTP, files) speaks strings. Keeping one
class for the translation means an id such as ``0739079891`` can never be turned into a number.

The rule for an id (user, item, session, event) lives here, once, and every door applies it:
event validation, item and user records, imports, and URL path parameters.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from recsmith.id_table import IdTable
from recsmith.surrogates import SURROGATES, UNENCODABLE

#: What ``uuid4_hex`` spells (a served list's ``recommendation_id``), as a regex a route checks.
UUID4_HEX_PATTERN = "^[0-9a-f]{32}$"

#: Bytes ``random_16`` draws from ``os.urandom`` at a time: 256 ids.
_POOL_BYTES = 4096


class _RandomPool:
    """``os.urandom`` drawn ``_POOL_BYTES`` at a time and handed out 16 bytes a call.

    ``os.urandom`` gives the GIL up for its system call, so a request drawing its two ids (the
    request id, the list id) while a background thread runs (the decision log's writer) waited
    for that thread to hand the GIL back: 40 µs a draw of wall time on the served path
    (BENCHMARKS §89) for 0.5 µs of CPU. The bytes are the same kernel's random bytes, drawn
    earlier. A lock, as the list routes run in the thread pool too: correct, but not testable
    cheaply: a review's stress run (8 threads × 20,000 draws, a 1 µs switch interval) found no
    duplicate ids with or without it, so no test holds it in place. A forked child starts with
    an empty pool (its own draws, never its parent's)."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._bytes = b""
        self._at = 0

    def take(self) -> bytes:
        with self._lock:
            at = self._at
            if at >= len(self._bytes):
                self._bytes, at = os.urandom(_POOL_BYTES), 0
            self._at = at + 16
            return self._bytes[at : at + 16]


_POOL = _RandomPool()


def random_16() -> bytes:
    """16 random bytes from ``os.urandom`` (``_RandomPool``): a request's or a list's id."""
    return _POOL.take()


def uuid4_hex() -> str:
    """``uuid.uuid4().hex`` without building a ``UUID``: 16 bytes of ``os.urandom``
    (``random_16``) with RFC 4122's version 4 and variant bits set, as ``uuid4`` sets them.
    Every served list takes one; ``UUID``'s checks and integer conversions cost 2-3x the
    bytes' (BENCHMARKS §74)."""
    raw = bytearray(random_16())
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # variant RFC 4122
    return raw.hex()


#: The longest id by default (``events.max_id_length``): ids are keys in the store, Redis and every
#: trained artifact, so one that holds a document instead of a name is refused at the door.
MAX_ID_LENGTH = 256

#: Control characters (C0, DEL, C1): invisible in logs and terminals, and a tab or a newline would
#: split the CSV and TSV files ids are exported to.
_CONTROL = r"\x00-\x1f\x7f-\x9f"
#: What an id may not contain: control characters, lone surrogates (UTF-8 cannot encode them, so no
#: store or file could keep the id) and ``/`` (an id is one URL path segment:
#: ``/v1/items/{item_id}/similar`` must never be read as the item ``x/similar``).
_FORBIDDEN = re.compile(f"[{_CONTROL}/{SURROGATES}]")
_CONTROL_CHAR = re.compile(f"[{_CONTROL}]")
_SURROGATE = re.compile(f"[{SURROGATES}]")


def id_problem(value: str, max_length: int = MAX_ID_LENGTH) -> str | None:
    """Why ``value`` is not a valid id, or None when it is: the rule itself, for one id."""
    if not value or value.isspace():
        return "must not be empty"
    if _FORBIDDEN.search(value):
        if _SURROGATE.search(value):  # the worst problem first: nothing could even store it
            return UNENCODABLE
        if _CONTROL_CHAR.search(value):
            return "contains control characters"
        return "contains '/' (an id is one URL path segment)"
    if len(value) > max_length:
        return f"longer than {max_length} characters"
    return None


def id_problems(ids: Sequence[str] | np.ndarray, max_length: int = MAX_ID_LENGTH) -> np.ndarray:
    """``id_problem`` of each id (an object array, None where valid), for a whole column.

    A million imported events must not pay a Python call per id, so a screen finds the ids that
    could fail (C-level ``map`` passes for lengths and blanks; one regex search over the ids joined
    together, which a clean column passes at once) and only those get ``id_problem``'s verdict.
    The screen only narrows: the reasons always come from ``id_problem``, the one rule.
    """
    n = len(ids)
    reasons = np.full(n, None, dtype=object)
    if n == 0:
        return reasons
    lengths = np.fromiter(map(len, ids), np.int64, n)
    suspect = (lengths == 0) | (lengths > max_length) | np.fromiter(map(str.isspace, ids), bool, n)
    if _FORBIDDEN.search(" ".join(ids)):
        suspect |= np.fromiter((_FORBIDDEN.search(v) is not None for v in ids), bool, n)
    for row in np.flatnonzero(suspect):
        reasons[row] = id_problem(ids[row], max_length)
    return reasons


def check_id(value: str, max_length: int = MAX_ID_LENGTH) -> str:
    """``value`` when it is a valid id, else ``ValueError`` saying why (for pydantic validators
    and URL path parameters)."""
    reason = id_problem(value, max_length)
    if reason is not None:
        raise ValueError(reason)
    return value


class IdMap:
    """An immutable, ordered vocabulary of string ids with vectorised lookups.

    Two representations behind one interface. Built from ids (training, format-1 releases), it
    holds them as Python strings in a pandas index. Opened on a release's memory-mapped arrays
    (``mapped``: the ids as fixed-width unicode), it looks ids up through an ``IdTable`` of
    int32 slots over the map (4-8 bytes an id, built on the first lookup), so a 1M-user release
    costs a server worker no private copy of its ids (~400 MB of strings and hash tables per
    worker otherwise); the pandas index is built only if something asks for every id at once
    (``external_ids``, ``==``).
    """

    __slots__ = ("_ids", "_index", "_lookup", "_table")

    #: Up to this many ids, lookups go through a plain dict: a request (one user and the few
    #: hundred items they have) must not pay for building a pandas index (~0.3 ms) when a dict
    #: answers in well under a microsecond per id.
    SMALL = 4096

    def __init__(self, ids: Iterable[str]) -> None:
        arr = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, dtype=object)
        index = pd.Index(arr, dtype=object)
        if not index.is_unique:
            dup = index[index.duplicated()][0]
            raise ValueError(f"IdMap ids must be unique; {dup!r} appears more than once")
        self._index: pd.Index | None = index
        self._lookup: dict[str, int] | None = None
        self._ids: np.ndarray | None = None
        self._table: IdTable | None = None

    @classmethod
    def mapped(cls, ids: np.ndarray) -> IdMap:
        """A map over ``ids`` (fixed-width unicode, unique, in index order), typically a
        read-only file map; nothing is copied."""
        if ids.dtype.kind != "U":
            raise ValueError(f"a mapped IdMap needs fixed-width unicode ids, not {ids.dtype}")
        out = cls.__new__(cls)
        out._index, out._lookup, out._ids, out._table = None, None, ids, None
        return out

    @classmethod
    def from_values(cls, values: Sequence[str] | np.ndarray) -> tuple[IdMap, np.ndarray]:
        """Build a map from a column of ids (first appearance order) and return the codes too."""
        codes, uniques = pd.factorize(np.asarray(values, dtype=object), sort=False)
        return cls(np.asarray(uniques, dtype=object)), codes.astype(np.int32)

    def reordered(self, order: np.ndarray) -> IdMap:
        """This map's ids in ``order``, a permutation of its indices (id n of the result is id
        ``order[n]`` here: a renumbered validation past's, ``Interactions.own_item_order``).
        Skips ``__init__``'s uniqueness check, which hashes every id (~0.3 s CPU at 1M items,
        most of what renumbering a past cost: BENCHMARKS §177): a permutation of unique ids is
        unique. A lookup by id still builds the hash table, when one is asked for."""
        order = np.asarray(order)
        n = len(self)
        if (
            order.ndim != 1
            or len(order) != n
            or order.dtype.kind not in "iu"
            or (n and (order.min() < 0 or order.max() >= n))
            or np.bincount(order, minlength=n).max(initial=1) > 1
        ):
            raise ValueError("reordered needs a permutation of the map's indices")
        out = IdMap.__new__(IdMap)
        out._index = pd.Index(self.to_external(order), dtype=object)
        out._lookup, out._ids, out._table = None, None, None
        return out

    def __len__(self) -> int:
        return len(self._ids) if self._ids is not None else len(self._pandas())

    def __contains__(self, external_id: object) -> bool:
        if self._ids is not None:
            return isinstance(external_id, str) and bool(self.to_index([external_id])[0] >= 0)
        return external_id in self._pandas()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdMap) and self._pandas().equals(other._pandas())

    def __hash__(self) -> int:  # pragma: no cover - maps are not meant as dict keys
        return id(self)

    def _pandas(self) -> pd.Index:
        """The ids as a pandas index (built from the maps on first use)."""
        if self._index is None:
            self._index = pd.Index(self._ids.astype(object), dtype=object)  # type: ignore[union-attr]
        return self._index

    def to_index(self, external_ids: Sequence[str] | np.ndarray) -> np.ndarray:
        """Dense indices for ids; -1 where an id is unknown."""
        if self._ids is not None:
            return self._search(external_ids)
        if len(external_ids) <= self.SMALL:
            if self._lookup is None:
                ids = self._pandas().to_numpy()
                self._lookup = dict(zip(ids, range(len(ids)), strict=True))
            get = self._lookup.get
            return np.fromiter((get(i, -1) for i in external_ids), np.int32, len(external_ids))
        target = pd.Index(np.asarray(external_ids, dtype=object), dtype=object)
        return self._pandas().get_indexer(target).astype(np.int32)

    def _search(self, external_ids: Sequence[str] | np.ndarray) -> np.ndarray:
        """``to_index`` over the mapped ids through ``IdTable`` (built on the first lookup): a
        few vectorised probes per id instead of a binary search's ~17 random reads of the map.
        An id longer than the stored width cannot be one of them, and is kept out of the cast
        to that width, which would cut it to a prefix that might be; so is one holding NUL
        (which numpy drops from the end of a fixed-width string), and anything not a str."""
        ids = self._ids
        assert ids is not None
        if not len(external_ids) or not len(ids):
            return np.full(len(external_ids), -1, dtype=np.int32)
        if self._table is None:
            self._table = IdTable(ids)
        width = ids.dtype.itemsize // 4
        query = external_ids.tolist() if isinstance(external_ids, np.ndarray) else external_ids
        units = _units_if_plain(query, width)
        if units is None:  # not all str, or some holding NUL: screened id by id
            query = np.asarray(query, dtype=object)
            fits = _fitting(query, width)
            out = np.full(len(query), -1, dtype=np.int32)
            out[fits] = self._table.find(query[fits].astype(ids.dtype))
            return out
        # a str longer than the width has a code unit past it: the one column cast beyond
        fits = units[:, width] == 0
        wanted = np.ascontiguousarray(units[:, :width]).view(f"<U{width}").ravel()
        if wanted.dtype != ids.dtype:  # ids stored big-endian (``>U``): converted, not viewed
            wanted = wanted.astype(ids.dtype)
        if fits.all():
            return self._table.find(wanted)
        out = np.full(len(query), -1, dtype=np.int32)
        out[fits] = self._table.find(wanted[fits])
        return out

    def to_external(self, indices: np.ndarray) -> np.ndarray:
        """External ids (object array of str) for dense indices; indices must be valid."""
        if self._ids is not None:
            return self._ids[np.asarray(indices, dtype=np.int64)].astype(object)
        return self._pandas().to_numpy()[np.asarray(indices, dtype=np.int64)]

    @property
    def external_ids(self) -> np.ndarray:
        """All ids in index order (object array of str)."""
        return self._pandas().to_numpy()

    def to_array(self) -> np.ndarray:
        """A fixed-width unicode array: saveable as ``.npy``/``.npz`` with allow_pickle=False."""
        if self._ids is not None:
            return self._ids
        return self._pandas().to_numpy().astype(str)


def _units_if_plain(query: Sequence[str], width: int) -> np.ndarray | None:
    """The UTF-32 code units of ``query`` cast one unit wider than ``width`` (uint32, one row an
    id, NUL-padded), or None unless every one is a str without NUL: the common batch, screened
    by one C-level ``join`` (which refuses anything not a str) and cast in one step; a longer id
    is cut to ``width + 1`` units, enough to see it does not fit. ~3 times cheaper at a batch's
    400 ids than an object array's type and length screen and cast (``_fitting``)."""
    try:
        joined = "".join(query)
    except TypeError:
        return None
    if "\x00" in joined:
        return None
    wide = np.array(query, dtype=f"<U{width + 1}")
    return wide.view(np.uint32).reshape(len(query), width + 1)


def _fitting(query: np.ndarray, width: int) -> np.ndarray:
    """Which of ``query`` (an object array) could be one of ids stored ``width`` code units wide:
    a str no longer than that, holding no NUL, checked id by id (``_units_if_plain`` screens
    the common batch)."""
    return np.fromiter(
        (isinstance(q, str) and len(q) <= width and "\x00" not in q for q in query),
        bool,
        len(query),
    )


def sort_order(ids: np.ndarray) -> np.ndarray:
    """The permutation that sorts ``ids`` (intp, what ``np.searchsorted`` takes as ``sorter``
    without converting it): saved beside a release's ids (its presence marks a format-2
    release; servers before §85 searched with it)."""
    return np.argsort(ids, kind="stable").astype(np.intp)
