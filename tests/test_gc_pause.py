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


def test_overlapping_pauses_with_a_switch_at_every_line_keep_the_collector_off() -> None:
    """Six threads pausing and resuming, overlapping, with a thread switch possible at every
    line of ``paused_gc``, five rounds: inside every pause the collector is off, each time it is
    looked at, and it is on again once a round's pauses have all ended. (Without the lock a
    round goes wrong about five times in six; five rounds miss it about once in 8,000.)"""
    seen_on: list[int] = []

    def work(n: int, start: threading.Barrier) -> None:
        start.wait()
        for _ in range(150):
            with paused_gc():
                for _ in range(3):
                    if gc.isenabled():
                        seen_on.append(n)
                    time.sleep(0)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    threading.settrace(_yield_at_each_line)
    try:
        for _ in range(5):
            start = threading.Barrier(6)
            threads = [threading.Thread(target=work, args=(n, start)) for n in range(6)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=60)
            assert not any(t.is_alive() for t in threads)
            assert seen_on == []
            assert gc.isenabled()
    finally:
        threading.settrace(None)  # type: ignore[arg-type]
        sys.setswitchinterval(interval)


def test_loading_a_catalogue_leaves_the_collector_on() -> None:
    from recsmith.events.validate import validate_items

    items, _ = validate_items([{"item_id": f"i{n}"} for n in range(100)])
    assert len(items) == 100 and gc.isenabled()
