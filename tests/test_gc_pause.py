"""The collector pause around bulk loads: off inside, restored after, whatever happens."""

from __future__ import annotations

import gc
import sys
import threading
import time
from collections.abc import Iterator
from types import FrameType
from typing import Any

import pytest

from recsmith import gc_pause
from recsmith.gc_pause import paused_gc


@pytest.fixture(autouse=True)
def _collector_on() -> Iterator[None]:
    gc.enable()
    yield
    gc.enable()


def test_no_collection_inside_and_the_collector_is_back_after() -> None:
    with paused_gc():
        assert not gc.isenabled()
        before = gc.get_stats()[0]["collections"]
        _ = [[i] for i in range(50_000)]  # far past the 700-allocation threshold
        assert gc.get_stats()[0]["collections"] == before
    assert gc.isenabled()


def test_nested_pauses_and_errors_restore_the_previous_state() -> None:
    with pytest.raises(RuntimeError), paused_gc():
        with paused_gc():
            pass
        assert not gc.isenabled()  # the inner block must not switch it back on
        raise RuntimeError("load failed")
    assert gc.isenabled()
    gc.disable()
    with paused_gc():
        pass
    assert not gc.isenabled()  # a caller that had it off keeps it off


def test_pauses_overlapping_in_two_threads_end_with_the_last_one() -> None:
    """A pauses, B pauses, A ends while B is still inside: collections stay off until B ends."""
    a_in, a_out, b_in, b_out = (threading.Event() for _ in range(4))
    states: dict[str, bool] = {}

    def first() -> None:
        with paused_gc():
            a_in.set()
            b_in.wait()
        a_out.set()

    def second() -> None:
        a_in.wait()
        with paused_gc():
            b_in.set()
            a_out.wait()
            states["inside B after A ended"] = gc.isenabled()
        b_out.set()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert b_out.is_set()
    assert states == {"inside B after A ended": False}
    assert gc.isenabled()


def test_many_threads_pausing_at_once_leave_the_collector_on() -> None:
    """Pauses from four threads with the interpreter switching threads as often as it can (a
    switch between reading the collector's state and turning it off is how it was left off)."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for _ in range(800):

            def work() -> None:
                for _ in range(200):
                    with paused_gc():
                        _ = [[i] for i in range(20)]

            threads = [threading.Thread(target=work) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert gc.isenabled()
    finally:
        sys.setswitchinterval(interval)


def _yield_at_each_line(frame: FrameType, event: str, arg: object) -> Any:
    """A trace function that hands the interpreter to another thread at every line of
    ``gc_pause`` (``time.sleep(0)`` releases the GIL): CPython 3.11 switches threads only after
    calls and at loop jumps, so between reading the pause count and writing it — where pauses
    without the lock go wrong — it never would on its own."""
    if frame.f_code.co_filename != gc_pause.__file__:
        return None
    if event == "line":
        time.sleep(0)
    return _yield_at_each_line


class _YieldingCollector:
    """``gc``'s switch as ``paused_gc`` uses it, handing the interpreter to another thread
    before and after every call (the real calls are C and never switch): a pause that reads or
    sets the switch outside the lock is then overtaken there, as it could be in a server."""

    def __init__(self) -> None:
        self.enabled = True
        self.on_while_paused = 0

    def isenabled(self) -> bool:
        time.sleep(0)
        enabled = self.enabled
        time.sleep(0)
        return enabled

    def enable(self) -> None:
        time.sleep(0)
        self.enabled = True
        self.on_while_paused += gc_pause._depth > 0  # a pause that began meanwhile is not over
        time.sleep(0)

    def disable(self) -> None:
        time.sleep(0)
        self.enabled = False
        time.sleep(0)


def test_overlapping_pauses_with_a_switch_at_every_line_keep_the_collector_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two threads pausing and resuming, overlapping, with a thread switch possible at every
    line of ``paused_gc`` and around each use of the switch (``_YieldingCollector``), eight
    rounds: inside every pause the collector is off, each time it is looked at, it is never
    turned on while a pause is under way, and it is on again once a round's pauses have all
    ended. Two threads, not six: the pause count goes through 0, where pauses without the lock
    go wrong, far more often. Taking away the entry's lock failed 10 runs of 10, the exit's 20 of
    20 (mostly in the first round), both 4 of 4; the real code passes in about 5 s on a loaded
    machine. The real collector is never touched here (the autouse fixture turns it on anyway)."""
    collector = _YieldingCollector()
    monkeypatch.setattr(gc_pause, "gc", collector)
    seen_on: list[int] = []

    def work(n: int, start: threading.Barrier) -> None:
        start.wait()
        for _ in range(400):
            with paused_gc():
                for _ in range(3):
                    if collector.enabled:
                        seen_on.append(n)
                    time.sleep(0)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    threading.settrace(_yield_at_each_line)
    try:
        for _ in range(8):
            start = threading.Barrier(2)
            threads = [threading.Thread(target=work, args=(n, start)) for n in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=60)
            assert not any(t.is_alive() for t in threads)
            assert (seen_on, collector.on_while_paused) == ([], 0)
            assert collector.enabled
    finally:
        threading.settrace(None)  # type: ignore[arg-type]
        sys.setswitchinterval(interval)


def test_loading_a_catalogue_leaves_the_collector_on() -> None:
    from recsmith.events.validate import validate_items

    items, _ = validate_items([{"item_id": f"i{n}"} for n in range(100)])
    assert len(items) == 100 and gc.isenabled()
