"""Erasing a person: every row that names them, their online state and cached lists, and a
tombstone so they never come back.

The order is what makes it hold. The mark goes into this process's view first, so from that
moment this process serves them the anonymous list and refuses their events; the decision log is
flushed, so lists served to them a moment ago are stored (and then erased) rather than written
after the erasure; then one store transaction deletes their rows and stores the erased mark,
which every other server process reads within ``serving.catalog_sync_interval_s``
(``privacy.sync``). What other processes did in that second (a list served and logged, an event
stored, a recent item pushed) is caught by a second sweep ``privacy.erase_settle_s`` later.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from recsmith.governance.audit import record_audit
from recsmith.privacy.marks import Mark
from recsmith.privacy.view import view_of
from recsmith.store.base import ApiKey, EventStore

if TYPE_CHECKING:
    from recsmith.decisions.log import DecisionLog
    from recsmith.serving.online_state import OnlineState
    from recsmith.serving.response_cache import ResponseCache


#: What an erasure reports, each kind always present (0 when there was nothing of it).
KINDS = (
    "events",
    "profile",
    "decisions",
    "shown_items",
    "attributions",
    "dead_letters",
    "aliases",
    "online_state",
    "response_cache",
)


@dataclass(frozen=True, slots=True)
class Reach:
    """What an erasure can touch besides the store: this process's online state, response
    cache and decision log (None: not open here, e.g. a CLI without Redis)."""

    state: OnlineState | None = None
    cache: ResponseCache | None = None
    decisions: DecisionLog | None = None


@dataclass(frozen=True, slots=True)
class Erasure:
    """One person erased: their salted hash (what the audit trail names) and what was removed,
    by kind; a linked visitor's events, lists, online state and cached lists count as the
    person's."""

    subject: str
    removed: dict[str, int] = field(default_factory=dict)  # by ``KINDS``


def erase_people(
    store: EventStore,
    user_ids: Iterable[str],
    *,
    reach: Reach = Reach(),
    settle_s: float = 2.5,
    key: ApiKey | None = None,
) -> list[Erasure]:
    """Erase each person (see module docstring); blocking for ``settle_s`` between the two
    sweeps. Erasing someone erased before removes what is left (nothing, usually) and is fine."""
    ids = list(dict.fromkeys(user_ids))
    view = view_of(store)
    marks = {
        uid: Mark(view.subject(uid), erased=True, personalization=False, tracking=False)
        for uid in ids
    }
    view.apply(list(marks.values()))
    totals = {uid: _sweep(store, uid, marks[uid], reach) for uid in ids}
    if settle_s > 0:
        time.sleep(settle_s)
    for uid in ids:
        totals[uid].update(_sweep(store, uid, marks[uid], reach))
    done = [Erasure(marks[uid].subject, dict(totals[uid])) for uid in ids]
    for erasure in done:
        record_audit(store, action="erase", target=erasure.subject, key=key, detail=erasure.removed)
    return done


def _sweep(store: EventStore, user_id: str, mark: Mark, reach: Reach) -> Counter[str]:
    """One pass: the store's rows, then the online state and cached lists of the person and of
    the visitor ids linked to them (read before the store forgets the links)."""
    if reach.decisions is not None:
        reach.decisions.flush()
    actors = [user_id, *(alias for alias, _, _ in store.aliases_of(user_id))]
    removed: Counter[str] = Counter(dict.fromkeys(KINDS, 0))
    removed.update(store.erase_person(user_id, mark))
    for actor in actors:
        removed["online_state"] += reach.state.forget(actor) if reach.state is not None else 0
        removed["response_cache"] += reach.cache.forget(actor) if reach.cache is not None else 0
    return removed
