"""PostgreSQL's move of an old decision log to one row a list, as one set-based UPDATE (§96).

``store.packed_items`` packs list by list in Python: every old item row crosses to the client
and every list goes back as its own UPDATE (~8 min a million lists). Here the server groups the
item rows (``string_agg ... GROUP BY``) and writes each list's ``items`` text in one statement.
The text must be exactly what ``decisions.rows.pack`` writes, so each part is built as Python's
encoder builds it:

* item ids: ``to_json(text)`` escapes what Python's ``ensure_ascii=False`` encoder escapes (``"``,
  ``\\``, control characters as ``\\b \\f \\n \\r \\t`` or ``\\u00xx``) and nothing else;
* floats: with ``extra_float_digits`` > 0 PostgreSQL prints the shortest text that reads back as
  the same double (Ryu), the digits Python's ``repr`` chooses below 2**53; the layouts differ in
  two ways, both rewritten: a whole number lacks Python's ``.0``, and PostgreSQL turns to an
  exponent from 1e15 where Python waits for 1e16. A NaN or infinite float is
  ``"nan"``/``"inf"``/``"-inf"`` (``rows._named``). From 2**53 up, where a shorter decimal can lie
  exactly halfway between two doubles, PostgreSQL keeps a 17th digit that Python drops
  (2.992357252849831e+16 against …8312e+16): the few lists holding such a float are packed again
  by ``store.packed_items``, in Python (``LARGE_LISTS_SQL``);
* source lists: the few distinct stored texts (the old writer's ``json.dumps``) are re-encoded
  by Python's own encoder and joined in by text, so a malformed one fails as ``json.loads`` says.

``tests/store/test_one_row_migration.py`` compares the text with ``rows.pack``'s for awkward
values; ``benchmarks/pack_old_items_pg.py`` with the list-by-list move on 100k lists.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from recsmith.decisions import rows

#: The distinct stored source-list texts (a handful: one per combination of sources).
DISTINCT_SOURCES_SQL = "SELECT DISTINCT sources FROM decision_items"
#: Shortest round-trip float text for this transaction, whatever the server's default.
FLOAT_DIGITS_SQL = "SET LOCAL extra_float_digits = 1"
#: The lists holding a finite float of magnitude 2**53 or more (NaN sorts above infinity).
LARGE_LISTS_SQL = "SELECT DISTINCT recommendation_id FROM decision_items WHERE " + " OR ".join(
    f"(abs({c}) >= 9007199254740992 AND abs({c}) < 'Infinity')" for c in ("score", "propensity")
)


def _float(column: str) -> str:
    """SQL for ``column``'s float as Python's encoder writes it inside ``rows.pack``'s text."""
    text = f"{column}::text"
    digits = f"replace(split_part(ltrim({text}, '-'), 'e', 1), '.', '')"
    fixed_16 = (  # 1e15 <= |x| < 1e16: PostgreSQL's d.ddde+15 as Python's 16-digit fixed form
        f"CASE WHEN {column} < 0 THEN '-' ELSE '' END || rpad(left({digits}, 16), 16, '0') "
        f"|| '.' || CASE WHEN length({digits}) > 16 THEN substr({digits}, 17) ELSE '0' END"
    )
    return (
        f"CASE WHEN {column} = 'NaN' THEN '\"nan\"' "
        f"WHEN {column} = 'Infinity' THEN '\"inf\"' "
        f"WHEN {column} = '-Infinity' THEN '\"-inf\"' "
        f"WHEN abs({column}) >= 1e15 AND abs({column}) < 1e16 THEN {fixed_16} "
        f"WHEN {text} ~ '[.e]' THEN {text} "
        f"ELSE {text} || '.0' END"
    )


def _parts(*columns: str) -> str:
    """``[a,b,…]`` per list of each column's element text, in position order, joined by ``,``."""
    return " || ',' || ".join(
        f"'[' || string_agg({c}, ',' ORDER BY i.position) || ']'" for c in columns
    )


#: Every list with item rows packed at once; parameters: the stored source texts and their
#: packed forms (``source_pairs``). Lists without item rows keep the default (no item).
PACK_SQL = (
    "UPDATE decisions AS d SET items = p.items, size = p.n FROM ("
    "SELECT i.recommendation_id, '[' || "
    + _parts("to_json(i.item_id)::text", _float("i.score"), "s.packed", _float("i.propensity"))
    + " || ']' AS items, count(*) AS n "
    "FROM decision_items AS i "
    "JOIN unnest(%s::text[], %s::text[]) AS s(stored, packed) ON s.stored = i.sources "
    "GROUP BY i.recommendation_id) AS p "
    "WHERE d.recommendation_id = p.recommendation_id"
)


def source_pairs(stored: Iterable[str]) -> tuple[list[str], list[str]]:
    """Each stored source-list text beside its form in ``rows.pack``'s text (parsed, then encoded
    by the same encoder); a text that is not JSON raises ``json.loads``' error."""
    texts = list(stored)
    return texts, [rows.encode_items(json.loads(text)) for text in texts]
