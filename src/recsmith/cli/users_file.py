"""The users a ``recommend --users`` file lists, read as the tools that write such files write
them: an outside scorer saves its test users with whatever it has (Excel and Windows tools put a
UTF-8 BOM first, pandas quotes an id that holds a comma, a test split is saved with its other
columns, with or without its header). A misread id is an unknown user, answered by popularity
with its own seen items and written back under a changed id, so every reading here is decided
once for the whole file and a line that cannot be read is refused by number."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from recsmith.errors import ValidationError
from recsmith.ids import IdMap

#: A header column holding the users, by its name lower-cased without ``_`` and spaces
#: (``user_id``, MovieLens' ``userId``, Amazon reviews' ``reviewerID``, RetailRocket's
#: ``visitorid``).
USER_COLUMNS = frozenset({"userid", "user", "reviewerid", "visitorid", "customerid"})
DELIMITERS = (",", ";", "\t")


@dataclass(frozen=True)
class UsersFile:
    """The listed users, each once in the order first listed; how many repeated lines were
    dropped (a user listed twice would otherwise get its rows, and its decision, twice); and
    whether headerless lines were read as CSV rows whose first field is the user."""

    ids: np.ndarray
    repeats: int
    rows: bool


def read_users_file(path: Path, known: IdMap | None = None) -> UsersFile:
    """``path``'s users. Where the first non-blank line is a header naming a user column
    (``USER_COLUMNS``; any position, comma, semicolon or tab), that column. Otherwise one id a
    line, the whole line (an id may hold a comma; a line that is one quoted CSV field, ``"u,1"``,
    is that field) — unless ``known`` (the trained users) holds more of the lines' first fields
    than of the whole lines: then every line is a CSV row whose first field is the user (a test
    split saved without its header; decided for the file, so a new user's rows are that user
    too). A BOM, blank lines and an id's surrounding spaces are dropped; leading zeros and other
    characters are kept as written."""
    if not path.is_file():
        raise FileNotFoundError(f"--users: no such file: {path}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationError("--users", f"{path} is not UTF-8 text ({exc.reason})") from None
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not lines:
        return _listed([], rows=False)
    delimiter = max(DELIMITERS, key=lines[0][1].count)
    header = [_name(field) for field in _fields(*lines[0], delimiter)]
    column = next((at for at, name in enumerate(header) if name in USER_COLUMNS), None)
    if column is not None and len(header) > 1:
        return _listed([_field(_fields(n, line, delimiter), column) for n, line in lines[1:]])
    body = lines[1:] if column is not None else lines
    whole = [_unquoted(line.strip()) for _, line in body]
    if known is None or column is not None or not any(delimiter in line for _, line in body):
        return _listed(whole)
    first = [_field(_fields(n, line, delimiter), 0) for n, line in body]
    if np.count_nonzero(known.to_index(first) >= 0) > np.count_nonzero(known.to_index(whole) >= 0):
        return _listed(first, rows=True)
    return _listed(whole)


def _fields(number: int, line: str, delimiter: str) -> list[str]:
    """One line's CSV fields; a stray quote, which a lenient reader would let run into the
    next lines (three users read as one), is refused naming the line."""
    try:
        return next(csv.reader([line], delimiter=delimiter, strict=True))
    except csv.Error as exc:
        raise ValidationError("--users", f"line {number} is not CSV ({exc})") from None


def _unquoted(line: str) -> str:
    """A line that is one quoted CSV field (``"u,1"``; a quote inside doubled) as that field;
    any other line as it is."""
    if len(line) < 2 or line[0] != '"' or line[-1] != '"':
        return line
    try:
        fields = next(csv.reader([line], strict=True))
    except csv.Error:
        return line
    return fields[0] if len(fields) == 1 else line


def _field(fields: list[str], at: int) -> str:
    return fields[at].strip() if len(fields) > at else ""


def _name(field: str) -> str:
    return field.strip().lower().replace("_", "").replace(" ", "")


def _listed(ids: list[str], rows: bool = False) -> UsersFile:
    listed = np.asarray([i for i in ids if i], dtype=object)
    unique = pd.unique(listed)
    return UsersFile(np.asarray(unique, dtype=object), len(listed) - len(unique), rows)
