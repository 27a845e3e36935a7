"""Output files named on the command line: checked before any work is done.

A command that computes (and records, e.g. in the decision log) before finding its ``--out``
unwritable has done work nobody can see, and pandas' OSError would reach the user as a traceback.
So the path is checked first, and a write that still fails is reported the same way."""

from __future__ import annotations

import os
from pathlib import Path

from recsmith.errors import ValidationError


def check_writable(path: Path, option: str = "--out") -> None:
    """Raise a ValidationError naming ``option`` when ``path`` cannot be written as a file: it is
    a directory, its directory is missing or not a directory, or either is not writable."""
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise ValidationError(option, f"{path} is a directory, not a file")
    if not parent.exists():
        raise ValidationError(option, f"no such directory: {parent}")
    if not parent.is_dir():
        raise ValidationError(option, f"{parent} is not a directory")
    if path.exists():
        if not os.access(path, os.W_OK):
            raise ValidationError(option, f"{path} is not writable")
    elif not os.access(parent, os.W_OK | os.X_OK):
        raise ValidationError(option, f"directory {parent} is not writable")


def write_failed(path: Path, exc: OSError, option: str = "--out") -> ValidationError:
    """The error for a write that failed after :func:`check_writable` passed (a full disk, a
    path that changed meanwhile): the option, the path and the system's reason."""
    return ValidationError(option, f"cannot write {path}: {exc.strerror or exc}")
