"""Write a model directory all at once: readers see the previous directory or the complete new one.

A trainer that writes its files straight into ``--out`` and then fails (a disk fills, a value the
writer cannot encode) leaves a directory that looks like a model (``manifest.json`` is there) but
does not load, and the model it replaced is gone. So the files go into a staging directory next to
the target (same file system, so the final step is a rename), are flushed to disk, and only then
take the target's place: the old directory is renamed aside, the new one renamed in, the old one
removed. A failure at any point removes the staging directory and leaves the target as it was.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from recsmith.errors import ArtifactError, ValidationError


@contextmanager
def atomic_directory(target: Path) -> Iterator[Path]:
    """Yield an empty staging directory; when the block completes, it replaces ``target``.

    ``target`` may be missing, an empty directory, or a model directory (one with
    ``manifest.json``); anything else is refused before a file is written, because replacing it
    would delete files that are not ours. Any failure inside the block (or while swapping) is an
    ``ArtifactError`` naming ``target`` and the cause, with ``target`` untouched.
    """
    target = check_replaceable(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    except OSError as exc:
        raise ArtifactError(f"{target}: cannot write here ({_reason(exc)})") from exc
    try:
        yield staging
        _sync_tree(staging)
        _swap_in(staging, target)
    except Exception as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise ArtifactError(
            f"{target}: writing the model failed, nothing was changed ({_reason(exc)})"
        ) from exc
    except BaseException:  # Ctrl-C: clean up, but let the interrupt through as it is
        shutil.rmtree(staging, ignore_errors=True)
        raise


def check_replaceable(target: Path, option: str | None = None) -> Path:
    """``target`` resolved (a symlinked ``--out``: replace what it points to, keep the link), or
    a ValidationError unless ``atomic_directory`` may replace it, naming ``option`` (``--out``)
    and the path, where a command names the directory: what ``train`` checks before it trains,
    so a wrong ``--out`` costs no training and says which option to change."""
    field = option or str(target)
    try:
        target = target.resolve()
    except (RuntimeError, OSError) as exc:  # a loop: RuntimeError up to Python 3.12, then ELOOP
        loop = not isinstance(exc, OSError) or exc.errno == errno.ELOOP
        where = f"{target} " if option else ""
        reason = "a symlink loop" if loop else _reason(exc)
        raise ValidationError(field, f"{where}cannot be resolved ({reason})") from None
    where = f"{target} " if option else ""
    if not target.exists():
        above = next(p for p in target.parents if p.exists())  # the root always exists
        if not above.is_dir():
            raise ValidationError(field, f"{where}cannot be created: {above} is not a directory")
        return target
    if not target.is_dir():
        raise ValidationError(
            field, f"{where}exists and is not a directory (a model is saved as a directory)"
        )
    if not (target / "manifest.json").is_file() and any(target.iterdir()):
        raise ValidationError(
            field, f"{where}holds files but no model (no manifest.json): refusing to replace it"
        )
    return target


def _sync_tree(root: Path) -> None:
    """fsync every file and directory under ``root``, so that after a crash the renamed-in
    directory never holds files the disk had not received yet."""
    for folder, _, files in os.walk(root):
        for name in files:
            fsync_path(Path(folder, name))
        fsync_path(Path(folder))


def _swap_in(staging: Path, target: Path) -> None:
    if not target.exists():
        staging.rename(target)
    else:
        aside = staging.with_name(staging.name.replace(".tmp-", ".old-", 1))
        target.rename(aside)
        try:
            staging.rename(target)
        except BaseException:
            aside.rename(target)
            raise
        shutil.rmtree(aside, ignore_errors=True)
    fsync_path(target.parent)


def fsync_path(path: Path) -> None:
    """Flush a file's data, or a directory's entries (a rename is durable only once its
    directory is flushed), to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    return f"{type(exc).__name__}: {exc}"
