"""Identity merge: an anonymous visitor who logs in becomes the user, history included.

A visitor is known by the id its events carry as their actor: the ``session_id`` of events
without a ``user_id``, or a device id sent as the ``user_id`` of an anonymous visitor. Linking
that id (the alias) to a user means, from then on:

- online: the visitor's recent items move into the user's at once, so the user's next list
  follows what they browsed (they stay the visitor's too), and so do the items whose newest
  event of the visitor's weighed 0 or below (``events.latest.SEEN_MARK``): seen, never listed
  to the user either (the store's read of the user's items holds none of the visitor's events);
  the state keeps no times, so a dislike of either side stands: an item the user's state marks
  is not made recent by the visitor's view of it;
- training: every event whose actor is the alias counts as the user's (``with_aliases``).

The rule for chains and conflicts:

- an alias belongs to one user: linking it to another is refused (409 naming the owner) until
  it is unlinked; linking it again to its own user changes nothing;
- a chain ends at its user: linking to a user id that is itself an alias links to that alias's
  user, and a user who becomes an alias brings their own aliases along, so every alias points
  at a user directly and no cycle can form;
- an id cannot be its own alias, and an erased person takes no aliases.

Unlinking undoes the training mapping at the next training, and the visitor's later events stay
the visitor's; the recent items copied at link time stay in the user's online state until newer
ones push them out. Every link and unlink is audited under the user's salted hash.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import chain
from typing import TYPE_CHECKING, Literal

import pandas as pd

from recsmith.errors import ValidationError
from recsmith.events.latest import SEEN_MARK
from recsmith.governance.audit import record_audit
from recsmith.privacy.view import view_of
from recsmith.store.base import ApiKey, EventStore

if TYPE_CHECKING:
    from recsmith.serving.online_state import OnlineState

AliasKind = Literal["session", "device"]
#: Recent items a link moves from the visitor to the user at most (the online state's depth).
MOVED_ITEMS = 50


class AliasConflict(ValidationError):
    """The link breaks the rule (see module docstring): a 409 over HTTP."""


@dataclass(frozen=True, slots=True)
class Link:
    user_id: str  # the user the alias belongs to (the end of the chain)
    alias: str
    kind: AliasKind
    changed: bool  # False: it was linked so already
    moved: int  # recent items moved into the user's online state


def link_alias(
    store: EventStore,
    user_id: str,
    alias: str,
    kind: AliasKind,
    *,
    state: OnlineState | None = None,
    key: ApiKey | None = None,
) -> Link:
    """Link ``alias`` to ``user_id`` by the rule, and move the visitor's recent items."""
    view = view_of(store).fresh()
    mark = view.mark_of(user_id)
    if mark is not None and mark.erased:
        raise AliasConflict("user_id", "this person was erased: they take no aliases")
    outcome, owner = store.link_alias(alias, user_id, kind)
    if outcome == "self":
        raise AliasConflict(f"{kind}_id", "is the user itself (or an alias of it): nothing to link")
    if outcome == "conflict":
        raise AliasConflict(
            f"{kind}_id", f"is linked to another user ({owner!r}): unlink it there first"
        )
    moved = 0
    if outcome == "linked" and state is not None:
        # the state keeps no times, so a dislike of either side stands: the visitor's marks
        # move, and the visitor's recent items but those the user marked (their own stored
        # events agree with that mark); an item both viewed moves to the front, as it did
        marked = set(state.recent_and_seen(owner, MOVED_ITEMS)[1])
        recent, unliked = state.recent_and_seen(alias, MOVED_ITEMS)  # newest first both
        items = [item for item in recent if item not in marked]
        state.push(_entries(owner, items, unliked))
        moved = len(items)
    record_audit(
        store,
        action="alias.link",
        target=view.subject(owner),
        key=key,
        detail={"kind": kind, "changed": outcome == "linked", "moved": moved},
    )
    return Link(owner, alias, kind, outcome == "linked", moved)


def unlink_alias(
    store: EventStore,
    user_id: str,
    alias: str,
    *,
    state: OnlineState | None = None,
    key: ApiKey | None = None,
) -> bool:
    """Remove the link; False (and nothing audited) when ``alias`` was not linked to the user.

    With ``state``, the link's move of recent items is undone where it was made (this process and
    Redis): the visitor's items leave the user's recent items, so the next list follows the user's
    own history again, and the visitor's marks (``SEEN_MARK``) go with them. An item the user has
    stored events on stays, recent or marked, even where the visitor had it too (the link at
    most moved it to the front, never unmarked it): the user's own events hold it."""
    removed = store.unlink_alias(alias, user_id)
    if removed and state is not None:
        visitor = set(chain.from_iterable(state.recent_and_seen(alias, MOVED_ITEMS)))
        moved = visitor.difference(store.user_items(user_id))  # what the link brought
        recent, unliked = (
            [item for item in items if item not in moved]
            for items in state.recent_and_seen(user_id, MOVED_ITEMS)
        )
        state.forget(user_id)
        state.push(_entries(user_id, recent, unliked))
    if removed:
        target = view_of(store).subject(user_id)
        record_audit(store, action="alias.unlink", target=target, key=key)
    return removed


def _entries(actor: str, recent: list[str], unliked: list[str]) -> list[tuple[str, str]]:
    """What ``OnlineState.push`` takes to give ``actor`` these ``recent_and_seen`` lists (newest
    first both): the marks, then the recent items oldest first, as pushed. An item is in one
    list only, so the order between the two lists changes neither."""
    return [
        *((actor, SEEN_MARK + item) for item in reversed(unliked)),
        *((actor, item) for item in reversed(recent)),
    ]


def with_aliases(store: EventStore, chunks: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """Event chunks read for training, each event whose actor is an alias given the alias's user
    (one vectorised ``map`` per chunk; nothing to do without aliases)."""
    aliases = store.alias_map()
    for chunk in chunks:
        if not aliases:
            yield chunk
            continue
        actor = chunk["user_id"].where(chunk["user_id"].notna(), chunk["session_id"])
        owner = actor.map(aliases)
        hit = owner.notna().to_numpy()
        if hit.any():
            users = chunk["user_id"].to_numpy(dtype=object).copy()  # None stays None
            users[hit] = owner.to_numpy(dtype=object)[hit]
            chunk = chunk.assign(user_id=users)
        yield chunk
