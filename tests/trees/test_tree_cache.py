"""The compiled-tree cache keeps the most recently used libraries and clears dead builds."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from recsmith.trees import build
from recsmith.trees.build import (
    CompileFailed,
    KernelUnavailable,
    compiler,
    load_library,
    prune,
)

needs_cc = pytest.mark.skipif(compiler() is None, reason="no C compiler here")

NOW = 1_800_000_000.0


def touch(path: Path, age_s: float) -> Path:
    path.write_text("x")
    os.utime(path, (NOW - age_s, NOW - age_s))
    return path


def test_pruning_keeps_the_newest_libraries_and_drops_stale_partial_builds(tmp_path):
    libs = [touch(tmp_path / f"forest-{n}.so", age_s=100 * n) for n in range(5)]  # 0 newest
    locks = [touch(tmp_path / f"forest-{n}.lock", age_s=100 * n) for n in range(5)]
    dead = [touch(tmp_path / "forest-x.123.tmp", 7200), touch(tmp_path / "forest-x.123.c", 7200)]
    killed_lock = touch(tmp_path / "forest-killed.lock", 7200)
    building = [touch(tmp_path / "forest-y.456.tmp", 60), touch(tmp_path / "forest-y.456.c", 60)]
    # a remembered failure is an entry like a library: newer than libs[2], older than libs[1]
    failed = [touch(tmp_path / "forest-f.failed", 150), touch(tmp_path / "forest-f.lock", 7200)]
    just_built = touch(tmp_path / "forest-new.so", 9000)  # never pruned, whatever its time
    prune(tmp_path, 4, keep=just_built, now=NOW)
    left = sorted(p.name for p in tmp_path.iterdir())
    expected = [libs[0], libs[1], locks[0], locks[1], *failed, *building, just_built]
    assert left == sorted(p.name for p in expected)
    assert not any(p.exists() for p in [*dead, killed_lock, libs[2], locks[2], libs[4]])


@needs_cc
def test_a_build_keeps_the_configured_number_of_most_recently_used_libraries(tmp_path, monkeypatch):
    monkeypatch.setenv("RECSMITH_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("RECSMITH_TREE_CACHE_KEEP", "2")

    def build(n: int) -> int:
        return load_library(f"int answer(void) {{ return {n}; }}\n", native=False).answer()

    assert [build(0), build(1), build(0)] == [0, 1, 0]  # the second 0 from the cache: used now
    assert build(2) == 2  # a third library: the least recently used one (1) goes
    after = set(tmp_path.glob("forest-*.so"))
    assert len(after) == 2
    assert build(0) == 0  # still cached: nothing built, nothing pruned
    assert set(tmp_path.glob("forest-*.so")) == after


def test_a_bad_keep_count_is_refused_naming_the_variable(monkeypatch):
    monkeypatch.setenv("RECSMITH_TREE_CACHE_KEEP", "all")
    with pytest.raises(KernelUnavailable, match="RECSMITH_TREE_CACHE_KEEP='all'"):
        load_library("int answer(void) { return 0; }\n")


@needs_cc
def test_each_use_is_stamped_after_the_one_before(tmp_path, monkeypatch):
    """Libraries used one right after the other (well within the kernel's coarse clock tick,
    which ``utime`` without a time stamps) are ordered as used: pruning never breaks a tie by
    the libraries' names, which hash the CPU's macros and so differ from machine to machine."""
    monkeypatch.setenv("RECSMITH_CACHE_DIR", str(tmp_path))
    sources = [f"int answer(void) {{ return {n}; }}\n" for n in range(3)]
    paths = []
    for source in sources:
        before = set(tmp_path.glob("forest-*.so"))
        load_library(source, native=False)
        [new] = set(tmp_path.glob("forest-*.so")) - before
        paths.append(new)
    for frozen in (False, True):  # a clock that does not move between two uses, too
        with monkeypatch.context() as clock:
            if frozen:  # stopped now: nothing is stamped in the future
                clock.setattr(build.time, "time_ns", lambda now=build.time.time_ns(): now)
            for _ in range(10):
                for n, source in enumerate(sources):
                    load_library(source, native=False)
                    stamps = {path: path.stat().st_mtime_ns for path in paths}
                    assert all(stamps[paths[n]] > stamps[p] for p in paths if p != paths[n])
    prune(tmp_path, 1)
    assert list(tmp_path.glob("forest-*.so")) == [paths[-1]]  # the last one used


@needs_cc
def test_the_machines_cpu_is_part_of_the_cache_key(tmp_path, monkeypatch):
    """Two CPUs sharing a cache directory: the same source built for each is two libraries."""
    cc = compiler()
    assert cc is not None
    empty = [cc, "-march=native", "-c", "-x", "c", os.devnull, "-o", os.devnull]
    if build.native_target(cc) is None or subprocess.run(empty, capture_output=True).returncode:
        pytest.skip(f"{cc} does not build with -march=native")
    monkeypatch.setenv("RECSMITH_CACHE_DIR", str(tmp_path))
    source = "int answer(void) { return 7; }\n"
    for cpu in ("#define __AVX2__ 1\n", "#define __AVX2__ 1\n#define __AVX512F__ 1\n"):
        monkeypatch.setattr(build, "native_target", lambda cc, narrowed=(), cpu=cpu: cpu)
        assert load_library(source).answer() == 7
        assert load_library(source).answer() == 7  # the second from the cache
    assert len(list(tmp_path.glob("forest-*.so"))) == 2


@needs_cc
def test_a_build_the_compiler_fails_is_remembered_not_retried(tmp_path, monkeypatch, no_native_cc):
    """The failure is kept in the cache: the next load raises it at once, without running the
    compiler (nor waiting on the lock for it); the build without ``-march=native`` still works."""
    monkeypatch.setenv("CC", str(no_native_cc))
    monkeypatch.setenv("RECSMITH_CACHE_DIR", str(tmp_path / "cache"))
    builds = tmp_path / "builds.log"
    source = "int answer(void) { return 3; }\n"
    with pytest.raises(CompileFailed, match="no such instruction: vcmpps"):
        load_library(source)
    assert len(builds.read_text().splitlines()) == 1
    [marker] = (tmp_path / "cache").glob("forest-*.failed")
    for _ in range(2):
        with pytest.raises(CompileFailed, match=r"no such instruction: vcmpps.*remembered in"):
            load_library(source)
    assert len(builds.read_text().splitlines()) == 1  # not compiled again
    assert load_library(source, native=False).answer() == 3
    marker.unlink()  # deleting the marker retries
    with pytest.raises(CompileFailed, match="no such instruction"):
        load_library(source)
    assert len(builds.read_text().splitlines()) == 3
