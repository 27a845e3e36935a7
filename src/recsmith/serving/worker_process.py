"""Process settings for a server worker that has loaded its model.

- **One compute thread.** ``serving.workers`` processes are how the server uses the cores, so
  each worker computes on one thread. Native libraries would otherwise start their own pools in
  every worker — faiss's OpenMP threads, spinning after each search, took a third of the 100k-item
  load test's throughput (1,220 → 780 requests/s) — and oversubscribe the machine. ``run``
  sets ``OMP_NUM_THREADS``/``OPENBLAS_NUM_THREADS`` for libraries loaded later and for spawned
  workers; ``threadpool_limits`` here covers those already loaded.
- **The model out of the garbage collector.** A loaded pipeline holds hundreds of thousands of
  Python objects (id maps, the catalogue's items), and CPython's full collection walks every
  tracked object: about 300 ms at 100,000 items, during which no request in the process moves —
  the whole p99 tail of the load test. ``gc.freeze`` moves what exists now into the permanent
  generation, which collections skip; reference counting still frees a swapped-out model once
  its last request ends.
- **Fewer young collections.** CPython collects its youngest generation every 700 net container
  allocations, and a serving worker keeps thousands a second alive past their request for a
  while: the decision log's buffered lists (``decisions.log``: a ``Decision`` holds ~14 until the
  writer's next flush), the requests in flight and queued. Under a fixed arrival rate two
  workers ran a young collection each 17-32 requests served and an older one each ten, walking
  the survivors again and finding nothing to free (0 objects collected in 20 s, 9-17 µs a
  request, ~1.5 % of the server's CPU at 700-800 requests/s; BENCHMARKS §137).
  ``YOUNG_COLLECTION_EVERY`` lets them die first; cyclic garbage waits at most that many
  allocations (a bounded delay, not a leak), and one collection walks at most that many young
  objects.
"""

from __future__ import annotations

import gc

from threadpoolctl import threadpool_limits

#: Net container allocations between two young collections in a serving worker (CPython's
#: default: 700); a threshold the process already has above it is kept (module docstring).
YOUNG_COLLECTION_EVERY = 10_000


def settle_worker(*, collect: bool) -> None:
    """Apply all three (see module docstring); call on the thread that serves requests, after a
    model is loaded (native libraries are found once imported). ``collect`` first frees cyclic
    garbage (a full pass: do it at start-up, not while serving)."""
    threadpool_limits(limits=1)
    if collect:
        gc.collect()
    gc.freeze()
    young, *older = gc.get_threshold()
    if 0 < young < YOUNG_COLLECTION_EVERY:  # 0: collections turned off, left so
        gc.set_threshold(YOUNG_COLLECTION_EVERY, *older)
