"""Pausing CPython's cyclic garbage collector while a model or catalogue is built in bulk.

Loading a pipeline creates hundreds of thousands of long-lived objects (a 100,000-item catalogue
alone is 100,000 ``Item``s with their lists and dicts). Every 700 allocations CPython runs a young
collection, and each time enough objects have survived it walks *all* of them again in a full one:
for the 100k-item load test's pipeline that made loading 2.4 s instead of 1.5 s, and each full pass
holds the GIL, stalling the requests a worker serves while it loads a new release. None of these
objects form garbage cycles while they are being built, so nothing is lost by not looking;
reference counting still frees everything as usual. The collector is back on when the block ends
(servers then ``gc.freeze`` the loaded model, see ``serving.worker_process``).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic collection inside the block; the previous state is restored after it (so blocks
    nest, and a caller that had the collector off keeps it off)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
