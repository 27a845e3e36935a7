"""The compiled-tree cache keeps the most recently used libraries and clears dead builds."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from recsmith.trees.build import KernelUnavailable, compiler, load_library, prune

NOW = 1_800_000_000.0


def touch(path: Path, age_s: float) -> Path:
    path.write_text("x")
    os.utime(path, (NOW - age_s, NOW - age_s))
    return path


def test_pruning_keeps_the_newest_libraries_and_drops_stale_partial_builds(tmp_path):
    libs = [touch(tmp_path / f"forest-{n}.so", age_s=100 * n) for n in range(5)]  # 0 newest
    locks = [touch(tmp_path / f"forest-{n}.lock", age_s=100 * n) for n in range(5)]
    dead = [touch(tmp_path / "forest-x.123.tmp", 7200), touch(tmp_path / "forest-x.123.c", 7200)]
    failed_lock = touch(tmp_path / "forest-failed.lock", 7200)
    building = [touch(tmp_path / "forest-y.456.tmp", 60), touch(tmp_path / "forest-y.456.c", 60)]
    just_built = touch(tmp_path / "forest-new.so", 9000)  # never pruned, whatever its time
    prune(tmp_path, 3, keep=just_built, now=NOW)
    left = sorted(p.name for p in tmp_path.iterdir())
    expected = [libs[0], libs[1], locks[0], locks[1], *building, just_built]
    assert left == sorted(p.name for p in expected)
    assert not any(p.exists() for p in [*dead, failed_lock, libs[4], locks[4]])


@pytest.mark.skipif(compiler() is None, reason="no C compiler here")
def test_a_build_keeps_the_configured_number_of_most_recently_used_libraries(tmp_path, monkeypatch):
    monkeypatch.setenv("RECSMITH_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("RECSMITH_TREE_CACHE_KEEP", "2")

    def build(n: int) -> int:
        return load_library(f"int answer(void) {{ return {n}; }}\n").answer()

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
