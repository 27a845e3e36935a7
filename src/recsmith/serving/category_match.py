"""``?category=`` names matched to the catalogue's categories, whatever their case.

A catalogue says "Comedy" and a client sends ``comedy``: an exact match would answer an empty list
that looks like an answer. Names are matched case-insensitively (``str.casefold``), and a name
matching none is a 422 naming some of the known ones, so a typo is seen at once.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from recsmith.serving.input_errors import invalid

#: How many known names a 422 lists.
SHOWN = 10
#: Vocabularies by identity: a served release keeps its tuple of names until the catalogue
#: changes, so the folded lookup is built once per vocabulary, not per request.
_FOLDED: dict[int, tuple[tuple[str, ...], dict[str, tuple[str, ...]]]] = {}
_MAX_CACHED = 8


def _folded(known: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    entry = _FOLDED.get(id(known))
    if entry is None or entry[0] is not known:
        lookup: dict[str, list[str]] = {}
        for name in known:
            lookup.setdefault(name.casefold(), []).append(name)
        if len(_FOLDED) >= _MAX_CACHED:
            _FOLDED.clear()
        entry = _FOLDED[id(known)] = (known, {k: tuple(v) for k, v in lookup.items()})
    return entry[1]


def match_categories(asked: Sequence[str], known: tuple[str, ...]) -> tuple[str, ...]:
    """The catalogue's names for ``asked`` (every spelling of a name that differs only in case);
    422 naming field ``category`` for a name the catalogue does not have."""
    folded = _folded(known)
    matched: dict[str, None] = {}
    for name in asked:
        names = folded.get(name.casefold())
        if names is None:
            raise invalid("category", _unknown(name, known, folded))
        matched.update(dict.fromkeys(names))
    return tuple(matched)


def _unknown(name: str, known: tuple[str, ...], folded: dict[str, tuple[str, ...]]) -> str:
    if not known:
        return f"unknown category {name!r}: the catalogue has no categories"
    close = difflib.get_close_matches(name.casefold(), folded, n=3)
    hint = f"; did you mean {', '.join(folded[c][0] for c in close)}?" if close else ""
    shown = sorted(known)[:SHOWN]
    more = f", … ({len(known) - SHOWN} more)" if len(known) > SHOWN else ""
    return f"unknown category {name!r} (known: {', '.join(shown)}{more}){hint}"
