"""What a reason calls an item: its title where the catalogue has one, else its id.

"Because you viewed 1" says nothing to a person; "because you viewed Toy Story (1995)" does. The
catalogue has no dedicated title field, so a title is, in order: the ``title`` property, the
``name`` property, or the item's ``text`` when it reads as a title (one line of at most
``MAX_TEXT_TITLE`` characters: the importers put MovieLens titles and Last.fm artist names there;
a longer text is a description, not a name).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from recsmith.events.schema import Item
from recsmith.ids import IdMap

#: Properties read as the item's title, first found wins.
TITLE_PROPERTIES = ("title", "name")
#: The longest ``text`` still taken for a title.
MAX_TEXT_TITLE = 120


def title_of(item: Item) -> str | None:
    """The item's title (see module docstring), or None when its record has none."""
    for name in TITLE_PROPERTIES:
        value = item.properties.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    text = (item.text or "").strip()
    if text and len(text) <= MAX_TEXT_TITLE and "\n" not in text:
        return text
    return None


def with_titles(titles: np.ndarray, items: Sequence[Item], ids: IdMap) -> np.ndarray:
    """``titles`` (object [n], None = no title; shorter than ``ids`` when the index grew) padded
    to ``ids`` and updated from the records ``items`` (a record without a title clears it);
    records of ids the index lacks are skipped. A new array: the old one may be serving."""
    out = np.full(len(ids), None, dtype=object)
    out[: len(titles)] = titles
    rows = ids.to_index(np.asarray([it.item_id for it in items], dtype=object))
    ok = rows >= 0
    out[rows[ok]] = [title_of(it) for it, keep in zip(items, ok, strict=True) if keep]
    return out


def display_names(titles: np.ndarray, ids: IdMap, item_ids: Sequence[str]) -> list[str]:
    """Each of ``item_ids`` as a reason names it: its title, else the id itself."""
    rows = ids.to_index(np.asarray(item_ids, dtype=object))
    if len(titles) == 0:
        return list(item_ids)
    found = np.where(rows >= 0, titles[np.maximum(rows, 0)], None)
    return [t if isinstance(t, str) else i for t, i in zip(found, item_ids, strict=True)]
