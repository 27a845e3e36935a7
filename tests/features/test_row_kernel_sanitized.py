"""The compiled pass's tests (``ranking.row_kernel``: the feature columns, the anchor search,
MMR's few-query walk, ``csr_of_rows``' rows, ``IdTable.find``, ``append_below``'s,
``merge``'s, ``Candidates.rescored``'s and the static sources' rows) run again in a child process
whose kernel is built with AddressSanitizer and UBSan: a read one element past an array (an
off-by-one bound at an index's first value out of range) or through a copy already freed returns
a neighbour's bytes in the plain build, which the tests mostly cannot tell from an answer or a
refusal; under the sanitizers it aborts the child (rv-cand22: five such mutants survived the
plain tests). Skipped where gcc or its sanitizer runtimes are missing: the runtime must be
preloaded into the Python process that loads the kernel."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import recsmith

ROOT = Path(__file__).resolve().parents[2]
#: the tests that drive the kernel, at the edges of its bounds among others
FILES = (
    "tests/features/test_candidate_feature_columns.py",
    "tests/pipeline/test_anchor_choice.py",
    "tests/rerank/test_mmr_few_queries.py",
    "tests/test_rows_with_pairs.py",
    "tests/test_find_ids.py",
    "tests/retrieval/test_below_rows.py",
    "tests/retrieval/test_merged_rows.py",
    "tests/retrieval/test_rescored_rows.py",
    "tests/retrieval/test_static_rows.py",
)

#: the child (argv: a folder for the build, then ``FILES``): ``row_kernel``'s library built by gcc
#: with the sanitizers (every report fatal) instead of ``trees.build``'s cache, then pytest
CHILD = """
import ctypes, subprocess, sys
from pathlib import Path
import pytest
from recsmith.ranking import row_kernel

def sanitized(source: str, native: bool = False) -> ctypes.CDLL:
    folder = Path(sys.argv[1])  # the parent's: the reports' line numbers read the files there
    (folder / "kernel.c").write_text(source)
    flags = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
    so = str(folder / "kernel.so")
    command = ["gcc", "-O1", "-g", "-std=c99", "-shared", "-fPIC", *flags, "-o", so]
    subprocess.run([*command, str(folder / "kernel.c"), "-lm"], check=True)
    return ctypes.CDLL(so)

row_kernel.load_library = sanitized
assert row_kernel.wait(120), row_kernel.unavailable_reason()
# --capture=sys: a report, written to file 2 as the child dies, reaches the parent
sys.exit(pytest.main(["-q", "-x", "-p", "no:cacheprovider", "--capture=sys", *sys.argv[2:]]))
"""


def _runtimes() -> list[str]:
    """gcc's ASan and UBSan runtimes (absolute paths), or a skip saying which is missing."""
    if shutil.which("gcc") is None:
        pytest.skip("no gcc: the sanitized kernel cannot be built")
    found = []
    for name in ("libasan.so", "libubsan.so"):
        path = subprocess.run(
            ["gcc", f"-print-file-name={name}"], capture_output=True, text=True
        ).stdout.strip()
        if not os.path.isabs(path) or not os.path.exists(path):
            pytest.skip(f"gcc has no {name}: the sanitized kernel cannot be loaded")
        found.append(path)
    # some hosts refuse the runtime its shadow memory (a sandbox, a fixed address layout)
    probe = subprocess.run(
        [sys.executable, "-c", "pass"],
        env={**os.environ, "LD_PRELOAD": ":".join(found), "ASAN_OPTIONS": "detect_leaks=0"},
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        pytest.skip(f"Python does not start with the sanitizers here: {probe.stderr[-300:]}")
    return found


def test_the_kernel_tests_pass_with_the_sanitizers(tmp_path: Path) -> None:
    """Every test of ``FILES`` passes with the sanitized kernel: no read past an array or of
    freed memory, no undefined behaviour, on the inputs they build (each a report would abort
    the child: a non-zero exit, the report in its output)."""
    env = {
        **os.environ,
        "LD_PRELOAD": ":".join(_runtimes()),
        # the recsmith this process imported, wherever the child starts
        "PYTHONPATH": os.pathsep.join(
            [str(Path(recsmith.__file__).parents[1]), os.environ.get("PYTHONPATH", "")]
        ),
        # Python's own allocations outlive it by design: leaks are not this test's question
        "ASAN_OPTIONS": "detect_leaks=0",
        "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
        "OPENBLAS_NUM_THREADS": "1",
    }
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path), *FILES],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = child.stdout + child.stderr
    assert child.returncode == 0, output[-6000:]
    assert " passed" in child.stdout and "skipped" not in child.stdout, child.stdout[-2000:]
