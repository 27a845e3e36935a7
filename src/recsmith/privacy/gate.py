"""Whether a recommendation request may use what is known about the user.

An erased person, or one who withdrew consent to personalization, gets the list an anonymous
visitor gets: the route asks the model as ``ANONYMOUS`` (an id no one can have: ids are non-empty
at every boundary), with no stored or recent items, and records the decision without a unit. The
check reads the process's privacy view only (``privacy.view``), never the store: the server
keeps the view fresh (``privacy.sync``).
"""

from __future__ import annotations

from recsmith.privacy.marks import list_reason
from recsmith.privacy.view import view_of
from recsmith.store.base import EventStore

#: The id the model is asked with for a person whose history must not be used.
ANONYMOUS = ""


def withheld_reason(store: EventStore, user_id: str) -> str | None:
    """Why the user's list must not be personalised, or None when it may be."""
    mark = view_of(store).mark_of(user_id)
    return list_reason(mark) if mark is not None and mark.withholds_personalization else None
