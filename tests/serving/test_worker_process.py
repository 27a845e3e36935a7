"""A served worker's process settings: young collections every 10,000 net allocations in a
``recsmith serve`` worker (one worker or several), never fewer than the process already asked
for, left off where they are, and not in a process that merely embeds the app; the model frozen
out of the collector's walks."""

from __future__ import annotations

import ast
import gc
import os
import subprocess
import sys
import time
import weakref
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from threadpoolctl import threadpool_limits

from recsmith.config import Settings
from recsmith.serving import create_app
from recsmith.serving.worker_process import collect_young_less_often, settle_worker
from recsmith.testing.ports import free_port

#: Loaded first by every Python process started with its folder on PYTHONPATH (``site``): writes
#: the process's collector thresholds to ``$GC_PROBE_DIR/<pid>`` every 50 ms, so a test can read
#: what a real server's worker processes run with.
THRESHOLD_PROBE = """
import gc, os, threading, time

def _write(path):
    while True:
        with open(path + ".tmp", "w") as out:
            out.write(repr(gc.get_threshold()))
        os.replace(path + ".tmp", path)
        time.sleep(0.05)

if "GC_PROBE_DIR" in os.environ:
    where = os.path.join(os.environ["GC_PROBE_DIR"], str(os.getpid()))
    threading.Thread(target=_write, args=(where,), daemon=True).start()
"""


@pytest.fixture
def threshold() -> Iterator[None]:
    """The test process's thresholds as they were, afterwards."""
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)


@pytest.fixture
def settled_process() -> Iterator[None]:
    """What ``settle_worker`` changes in the test process, as it was afterwards: the native
    libraries' thread limits (restored by the context) and the frozen objects (thawed only if
    nothing was frozen before: thawing would release what an earlier freeze holds)."""
    frozen_before = gc.get_freeze_count()
    with threadpool_limits(limits=None):
        yield
    if frozen_before == 0:
        gc.unfreeze()


@pytest.mark.usefixtures("threshold")
@pytest.mark.parametrize(
    ("asked", "settled"),
    [
        ((700, 10, 10), (10_000, 10, 10)),  # CPython's default: raised
        ((700, 3, 7), (10_000, 3, 7)),  # the older two as they were, whatever they are
        ((9_999, 10, 10), (10_000, 10, 10)),
        ((10_000, 10, 10), (10_000, 10, 10)),
        ((50_000, 5, 5), (50_000, 5, 5)),  # an operator's higher threshold is kept
        ((0, 10, 10), (0, 10, 10)),  # threshold 0 turns collections off: left off
    ],
)
def test_young_threshold(asked: tuple[int, int, int], settled: tuple[int, int, int]) -> None:
    gc.set_threshold(*asked)
    collect_young_less_often()
    assert gc.get_threshold() == settled
    collect_young_less_often()  # called again: nothing moves
    assert gc.get_threshold() == settled


@pytest.mark.usefixtures("threshold")
def test_young_collections_counted() -> None:
    """The collector really waits: 5,000 container allocations kept alive start no young
    collection after the threshold is raised, where CPython's default 700 would start several."""
    gc.set_threshold(700, 10, 10)
    collect_young_less_often()
    gc.collect(0)  # the count starts at 0, not wherever earlier tests' allocations left it
    collections = gc.get_stats()[0]["collections"]
    kept = [[i] for i in range(5_000)]
    assert gc.get_stats()[0]["collections"] == collections
    assert len(kept) == 5_000


class Cycle:
    """An object in a reference cycle: only the collector frees it."""

    def __init__(self) -> None:
        self.me = self


@pytest.mark.usefixtures("settled_process")
def test_settled_objects_are_out_of_the_collectors_walks() -> None:
    """What exists when the worker settles is frozen: a full collection no longer walks it, so
    even a dropped cycle stays; one made afterwards is still freed."""
    before, after = Cycle(), None
    before_ref = weakref.ref(before)
    settle_worker(collect=False)
    after = Cycle()
    after_ref = weakref.ref(after)
    del before, after
    gc.collect()
    assert before_ref() is not None
    assert after_ref() is None


@pytest.mark.usefixtures("threshold", "settled_process")
def test_an_embedding_app_leaves_the_process_thresholds(bundle_dir: Path, tmp_path: Path) -> None:
    """``create_app`` run in another program's process (here pytest's), its own model loaded and
    settled as a server's is: the process's thresholds are the program's during and after."""
    gc.set_threshold(700, 10, 10)
    settings = Settings.model_validate(
        {
            "serving": {"model_dir": str(bundle_dir)},
            "store": {"url": f"sqlite:///{tmp_path / 'embedded.sqlite'}"},
        }
    )
    with TestClient(create_app(settings)) as client:
        assert client.get("/health/ready").status_code == 200
        assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_threshold() == (700, 10, 10)


def _worker_pids(server: subprocess.Popen[bytes], workers: int) -> list[int]:
    """The processes that serve: the server itself with one worker, else its children
    (multiprocessing's resource tracker is not one)."""
    if workers == 1:
        return [server.pid]
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    return [
        int(p)
        for p in children
        if b"resource_tracker" not in Path(f"/proc/{p}").joinpath("cmdline").read_bytes()
    ]


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_served_workers_collect_young_every_10000(
    workers: int, bundle_dir: Path, tmp_path: Path
) -> None:
    """``recsmith serve`` as a user starts it: every worker process, once ready, runs with the
    young threshold raised (read from inside each process by ``THRESHOLD_PROBE``)."""
    probe, seen = tmp_path / "probe", tmp_path / "seen"
    probe.mkdir()
    seen.mkdir()
    (probe / "sitecustomize.py").write_text(THRESHOLD_PROBE)
    path = os.pathsep.join(p for p in (str(probe), os.environ.get("PYTHONPATH")) if p)
    port = free_port()
    command = [sys.executable, "-m", "recsmith", "-q", "serve", "--model-dir", str(bundle_dir)]
    server = subprocess.Popen(
        [*command, "--port", str(port), "--workers", str(workers)],
        env={
            **os.environ,
            "PYTHONPATH": path,
            "GC_PROBE_DIR": str(seen),
            "RECSMITH_STORE__URL": f"sqlite:///{tmp_path / 'served.sqlite'}",
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.stderr.read().decode()  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "server not ready"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=1).is_success:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        thresholds: dict[int, tuple[int, ...] | None] = {}
        while time.monotonic() < deadline:  # a second worker may still be loading its model
            pids = _worker_pids(server, workers)
            thresholds = {
                pid: ast.literal_eval((seen / str(pid)).read_text())
                if (seen / str(pid)).exists()
                else None
                for pid in pids
            }
            if len(pids) == workers and all(t == (10_000, 10, 10) for t in thresholds.values()):
                break
            time.sleep(0.2)
        assert len(thresholds) == workers
        assert all(t == (10_000, 10, 10) for t in thresholds.values()), thresholds
    finally:
        server.terminate()
        server.wait(timeout=30)
