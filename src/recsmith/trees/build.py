"""Compiling a model's generated C (``codegen``) into a shared library with the machine's C
compiler, once per model.

The library is built for the machine that loads it (``-march=native``: the AVX-512 or AVX2
kernel of ``vector_kernel`` where the CPU has it) and cached under the hash of its source, the
compiler, its flags and what ``-march=native`` means on this machine (a cache directory shared by
machines of different CPUs never hands one a library for the other's), in a directory
only this user can write (``RECSMITH_CACHE_DIR``, else ``$TMPDIR/recsmith-<uid>``): loading a
library someone else could have replaced would run their code. It is built when a ranker is
loaded, never while answering a request; the second load of the same model, and every server
worker after the first, finds it built. Each build prunes the cache: the
``RECSMITH_TREE_CACHE_KEEP`` (default 8) most recently used libraries stay, older ones go, and so
do partial builds older than an hour (a process killed mid-build leaves them). No compiler, or a
build that fails, raises ``KernelUnavailable`` with the reason; the ranker then scores with
LightGBM's own predict and says so. A build the compiler fails (``CompileFailed``) is remembered
in the cache as a ``.failed`` marker holding the compiler's message, pruned like a library: later
loads raise it at once rather than queue on the lock to fail the same way again (a compiler that
times out would cost each of them ten minutes). Delete the marker to retry.
"""

from __future__ import annotations

import ctypes
import fcntl
import functools
import hashlib
import os
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path

# -ffp-contract=off and no -ffast-math: the leaf sums stay in LightGBM's order, unfused, and
# NaN compares false
FLAGS = ("-O2", "-std=c99", "-shared", "-fPIC", "-ffp-contract=off", "-fno-fast-math")


#: flags narrowing ``-march=native`` to what a CPU with AVX2 but not AVX-512 has (GCC turns off
#: every AVX-512 extension with F): builds the AVX2 kernel here, for tests and benchmarks
NO_AVX512 = ("-mno-avx512f",)

#: Libraries kept in the cache when ``RECSMITH_TREE_CACHE_KEEP`` is not set.
KEEP = 8
#: A partial build (``*.tmp``, its ``.c``) older than this belongs to a process that died.
STALE_PARTIAL_S = 3600.0
#: what the cache keeps, most recently used first: libraries and markers of failed builds
KEPT = (".so", ".failed")


class KernelUnavailable(RuntimeError):
    """The compiled kernel cannot be had here (no compiler, a failed build): says why."""


class CompileFailed(KernelUnavailable):
    """The compiler ran and refused the source, or ran out of time: the same source, compiler and
    flags would fail again (unlike an unwritable cache or a missing compiler)."""


def compiler() -> str | None:
    """The C compiler to use: ``$CC`` if set, else ``cc`` or ``gcc`` on the PATH."""
    for name in (os.environ.get("CC"), "cc", "gcc"):
        if name and (found := shutil.which(name)):
            return found
    return None


def cache_dir() -> Path:
    """A directory for built libraries that only this user can write (created 0700)."""
    root = os.environ.get("RECSMITH_CACHE_DIR")
    where = Path(root) if root else Path(tempfile.gettempdir()) / f"recsmith-{os.getuid()}"
    where.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = where.stat()
    if info.st_uid != os.getuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise KernelUnavailable(f"{where} is writable by other users: not loading code from it")
    return where


@functools.cache
def native_target(cc: str, narrowed: tuple[str, ...] = ()) -> str | None:
    """What ``-march=native`` (then the ``narrowed`` flags) means to ``cc`` on this machine (the
    macros it predefines then, ``__AVX512F__`` among them); None when the compiler does not take
    the flags."""
    try:
        done = subprocess.run(
            [cc, "-march=native", *narrowed, "-dM", "-E", "-x", "c", os.devnull],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return "".join(sorted(done.stdout.splitlines(keepends=True))) if done.returncode == 0 else None


def load_library(source: str, native: bool = True, narrowed: tuple[str, ...] = ()) -> ctypes.CDLL:
    """The library built from C ``source``: from the cache, or compiled now (seconds for 100
    trees) under a lock file, so server workers starting together build it once. ``native``:
    for this machine's CPU (``-march=native``) where the compiler can, less what the
    ``narrowed`` flags turn off (``NO_AVX512``: the AVX2 kernel on an AVX-512 machine, for tests
    and benchmarks)."""
    cc = compiler()
    if cc is None:
        raise KernelUnavailable("no C compiler (set CC, or install gcc)")
    target = native_target(cc, narrowed) if native else None
    flags = (*FLAGS, "-march=native", *narrowed) if target is not None else FLAGS
    key = hashlib.sha256("\0".join([source, cc, *flags, target or ""]).encode()).hexdigest()[:24]
    count = keep_count()
    try:
        where = cache_dir()
        library = where / f"forest-{key}.so"
        failed = library.with_suffix(".failed")
        if not library.is_file():
            _raise_if_failed(failed)
            with open(where / f"forest-{key}.lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                if not library.is_file():
                    _raise_if_failed(failed)  # another process's build failed while we waited
                    try:
                        _compile(cc, source, library, flags)
                    except CompileFailed as exc:  # written whole: others read it unlocked
                        partial = failed.with_name(f"{failed.stem}.{os.getpid()}.tmp")
                        partial.write_text(str(exc))
                        os.replace(partial, failed)
                        mark_used(failed)
                        raise
                    prune(where, count, keep=library)
        mark_used(library)  # pruning keeps the most recently used
        return ctypes.CDLL(str(library))
    except OSError as exc:  # an unwritable cache directory, a library that does not load
        raise KernelUnavailable(str(exc)) from exc


def _raise_if_failed(marker: Path) -> None:
    """Raise the remembered ``CompileFailed`` of a build that failed before (used now)."""
    try:
        reason = marker.read_text()
        mark_used(marker)
    except FileNotFoundError:  # none, or pruned by another process this instant
        return
    raise CompileFailed(f"{reason} (remembered in {marker}: delete it to retry)")


_last_stamp_ns = 0


def mark_used(path: Path) -> None:
    """Stamp ``path`` as used now, later than anything this process stamped before: ``utime``
    without a time takes the kernel's coarse clock (a few ms), so a library reused right after
    another was used or built would tie with it, and pruning would pick between them by name."""
    global _last_stamp_ns
    _last_stamp_ns = max(time.time_ns(), _last_stamp_ns + 1)
    os.utime(path, ns=(_last_stamp_ns, _last_stamp_ns))


def _compile(cc: str, source: str, target: Path, flags: tuple[str, ...] = FLAGS) -> None:
    """Build under temporary names and rename: no process ever loads a half-written library."""
    partial = target.with_name(f"{target.stem}.{os.getpid()}.tmp")
    c_file = partial.with_suffix(".c")
    c_file.write_text(source)
    try:
        done = subprocess.run(
            [cc, *flags, "-o", str(partial), str(c_file), "-lm"],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        partial.unlink(missing_ok=True)
        raise CompileFailed(f"{cc} did not finish: {exc}") from exc
    except OSError as exc:
        raise KernelUnavailable(f"{cc} did not run: {exc}") from exc
    finally:
        c_file.unlink(missing_ok=True)
    if done.returncode != 0:
        partial.unlink(missing_ok=True)
        raise CompileFailed(f"{cc} failed: {done.stderr.strip()[:500]}")
    os.replace(partial, target)


def keep_count() -> int:
    """``RECSMITH_TREE_CACHE_KEEP``: how many built libraries the cache keeps (at least 1)."""
    raw = os.environ.get("RECSMITH_TREE_CACHE_KEEP", str(KEEP))
    try:
        count = int(raw)
    except ValueError:
        count = 0
    if count < 1:
        raise KernelUnavailable(f"RECSMITH_TREE_CACHE_KEEP={raw!r}: expected a whole number >= 1")
    return count


def prune(where: Path, count: int, keep: Path | None = None, now: float | None = None) -> None:
    """Remove all but the ``count`` most recently used libraries and failed-build markers in
    ``where`` (and their lock files; never ``keep``, the one just built), and partial builds and
    lock files with neither older than ``STALE_PARTIAL_S``. A library another process has loaded
    stays mapped there."""
    now_ns = time.time_ns() if now is None else int(now * 1e9)
    found = {path: _mtime_ns(path) for path in where.glob("forest-*")}
    entries = sorted(
        (p for p, t in found.items() if p.suffix in KEPT and t is not None and p != keep),
        key=lambda p: found[p] or 0,
        reverse=True,
    )
    for entry in entries[max(count - (keep is not None), 0) :]:
        entry.unlink(missing_ok=True)
        entry.with_suffix(".lock").unlink(missing_ok=True)
    for path, mtime in found.items():  # a lock without its library: a build that was killed
        partial = path.suffix not in KEPT and not (
            path.suffix == ".lock" and any(path.with_suffix(s).exists() for s in KEPT)
        )
        if partial and mtime is not None and now_ns - mtime > STALE_PARTIAL_S * 1e9:
            path.unlink(missing_ok=True)


def _mtime_ns(path: Path) -> int | None:
    """When ``path`` was last written or used (ns: a float of seconds rounds ~240 ns apart);
    None when another process removed it."""
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return None
