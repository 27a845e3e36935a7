"""One process at a time acts on a registry: an advisory lock file beside ``current.json``.

Every replica following a registry may decide at the same moment to roll back or to retrain.
Acting twice would be wrong (a second rollback goes one release further back), so each action
runs under ``flock`` on a file in the registry and re-checks, inside the lock, that it is still
needed. Works across processes and machines that share the registry over a local or NFSv4 mount.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def registry_lock(root: Path, name: str, *, wait: bool = True) -> Iterator[bool]:
    """Hold ``root/.NAME.lock``; yields False at once (holding nothing) when ``wait`` is False and
    another process holds it."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".{name}.lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
