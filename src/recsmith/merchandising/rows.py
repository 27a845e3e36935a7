"""The ``rule_sets`` table, one place for both store backends (``{p}``: the driver's placeholder).

Every change appends a row with the next version (never an UPDATE), so the history is the table
and "what changed since I last looked" is one ``max(version)`` — the counter each server process
polls (``merchandising.live``). A version's ``document`` is the whole rule file as JSON; an empty
document is a version too (back to the pipeline's rules), so undoing it is setting the previous
one again.
"""

from __future__ import annotations

#: ``rule_sets`` columns in the order the SELECTs below return them.
RULE_SET_COLUMNS = ("version", "document", "set_by", "set_at")

SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS rule_sets (version INTEGER PRIMARY KEY, document TEXT NOT NULL,
    set_by TEXT, set_at INTEGER NOT NULL);
"""
POSTGRES_SCHEMA = """
CREATE TABLE IF NOT EXISTS rule_sets (version BIGINT PRIMARY KEY, document TEXT NOT NULL,
    set_by TEXT, set_at BIGINT NOT NULL);
"""
#: The next version, in the writer's transaction (SQLite's write lock, or PostgreSQL's
#: ``LOCK TABLE``), so two writers never take the same one.
INSERT_SQL = (
    "INSERT INTO rule_sets (version, document, set_by, set_at) "
    "SELECT COALESCE(MAX(version), 0) + 1, {p}, {p}, {p} FROM rule_sets RETURNING version"
)
VERSION_SQL = "SELECT COALESCE(MAX(version), 0) FROM rule_sets"
LATEST_SQL = (
    f"SELECT {', '.join(RULE_SET_COLUMNS)} FROM rule_sets ORDER BY version DESC LIMIT {{p}}"
)
ONE_SQL = f"SELECT {', '.join(RULE_SET_COLUMNS)} FROM rule_sets WHERE version = {{p}}"
