"""Each process's copy of the store's privacy marks, so that refusing an erased person's events
and withholding personalization cost no store query per request.

One view per open store (``view_of``): every path that writes events through a store (the HTTP
group commit, ``recsmith import``, quickstart) screens them the same way without a new parameter
threaded through each. The server refreshes it every ``serving.catalog_sync_interval_s``
(``privacy.sync``); ingest refreshes it itself when it is older than ``MAX_AGE_S``; the process
that erases or changes consent applies the new mark at once. Re-reading looks back
``LOOKBACK_US`` past the newest mark seen, for a writer that committed after it stamped.

With no marks at all (the usual case) a lookup hashes nothing; with some, one keyed BLAKE2b per
distinct id asked about (about a microsecond).
"""

from __future__ import annotations

import threading
import time
import weakref

from recsmith.privacy.marks import Mark, subject_of
from recsmith.store.base import LOOKBACK_US, EventStore

#: The oldest a view may be when ingest screens events with it (the "within a second" promise).
MAX_AGE_S = 1.0

_views: weakref.WeakKeyDictionary[EventStore, PrivacyView] = weakref.WeakKeyDictionary()
_views_lock = threading.Lock()


class PrivacyView:
    """The marks of one store as this process knows them (see module docstring)."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self._salt: bytes | None = None
        self._marks: dict[str, Mark] = {}
        self._since = 0
        self._refreshed = float("-inf")
        self._lock = threading.Lock()

    @property
    def salt(self) -> bytes:
        """The store's salt (read once; blocking on first use)."""
        if self._salt is None:
            self._salt = self.store.privacy_salt()
        return self._salt

    def subject(self, user_id: str) -> str:
        return subject_of(self.salt, user_id)

    def refresh(self) -> list[Mark]:
        """Read the marks written since the last refresh (blocking); returns those that erased
        someone this view did not know as erased."""
        found = self.store.privacy_marks(max(0, self._since - LOOKBACK_US))
        if found and self._salt is None:  # before any mark is used: lookups need the salt
            self._salt = self.store.privacy_salt()
        fresh = self.apply(found)
        self._refreshed = time.monotonic()
        return fresh

    def fresh(self, max_age_s: float = MAX_AGE_S) -> PrivacyView:
        """This view, refreshed first when older than ``max_age_s``."""
        if time.monotonic() - self._refreshed > max_age_s:
            self.refresh()
        return self

    def apply(self, marks: list[Mark]) -> list[Mark]:
        """Take these marks, each replacing the person's previous one (the store holds one per
        person, so a read never carries two; a mark just written here is the newest); returns
        the newly erased ones."""
        erased: list[Mark] = []
        with self._lock:
            for mark in marks:
                before = self._marks.get(mark.subject)
                if mark.erased and (before is None or not before.erased):
                    erased.append(mark)
                self._marks[mark.subject] = mark
                self._since = max(self._since, mark.updated_us)
        return erased

    def mark_of(self, user_id: str) -> Mark | None:
        """The person's mark, None when they have none (no store query)."""
        if not self._marks:
            return None
        return self._marks.get(self.subject(user_id))

    @property
    def erased_subjects(self) -> frozenset[str]:
        with self._lock:
            return frozenset(s for s, m in self._marks.items() if m.erased)

    @property
    def empty(self) -> bool:
        return not self._marks


def view_of(store: EventStore) -> PrivacyView:
    """The view of ``store`` in this process (created empty on first use, never refreshed here:
    callers say how fresh they need it)."""
    view = _views.get(store)  # every recommendation asks: no lock once the view exists
    if view is not None:
        return view
    with _views_lock:
        return _views.setdefault(store, PrivacyView(store))
