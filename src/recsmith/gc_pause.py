"""Pausing CPython's cyclic garbage collector while a model or catalogue is built in bulk.

Loading a pipeline creates hundreds of thousands of long-lived objects (a 100,000-item catalogue
alone is 100,000 ``Item``s with their lists and dicts). Every 700 allocations CPython runs a young
collection, and each time enough objects have survived it walks *all* of them again in a full one:
for the 100k-item load test's pipeline that made loading 2.4 s instead of 1.5 s, and each full pass
holds the GIL, stalling the requests a worker serves while it loads a new release. None of these
objects form garbage cycles while they are being built, so nothing is lost by not looking;
reference counting still frees everything as usual. The collector is back on when the block ends
(servers then ``gc.freeze`` the loaded model, see ``serving.worker_process``).

The collector's switch is one per process, and pauses overlap across threads (a worker's drift and
fairness reads of its decision window, a catalogue sync, a release load all run on pool threads):
the pauses are counted under a lock, the collector is back on when the last one ends, and only if
it was on when the first began. Each pause reading and setting the switch on its own let the
first to end turn collections on while another was still building, and could leave them off for
good (one read "off" while another was paused, then disabled after that one had re-enabled).
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
#: Pauses under way, in any thread.
_depth = 0
#: Whether the collector was on when the first of the pauses under way began.
_resume = False


@contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic collection inside the block; once no block is left in any thread, the state
    before the first is restored (so blocks nest and overlap across threads, and a caller that had
    the collector off keeps it off)."""
    global _depth, _resume
    with _lock:
        if _depth == 0:
            _resume = gc.isenabled()
        _depth += 1
        gc.disable()
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _resume:
                gc.enable()
