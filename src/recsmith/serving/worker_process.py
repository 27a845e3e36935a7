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
- **Fewer young collections** (``collect_young_less_often``, a served worker process only).
  CPython collects its youngest generation every 700 net container allocations, and a serving
  worker keeps thousands a second alive past their request for a while: the decision log's
  buffered lists (``decisions.log``: a ``Decision`` holds ~14 until the writer's next flush), the
  requests in flight and queued. Under a fixed arrival rate two workers ran a young collection
  each 17-32 requests served and an older one each ten, walking mostly live objects and freeing
  few (0-900 young and 0-180 older objects per worker in 20 s, cycles made by the socket/uvicorn
  layer, none by the app itself): 6-17 µs a request (more the further behind the server is),
  ~1.5 % of the server's CPU at 700-800 requests/s (BENCHMARKS §137, corrected by review
  rv-olp23). ``YOUNG_COLLECTION_EVERY`` lets the live ones die first. The price: cyclic garbage
  waits until the net count reaches that many (at ~40 such objects a second, minutes; bounded,
  not a leak), a young collection walks at most that many objects (~3-4 ms served) and an older
  one at most what survived the last ten. The threshold is the process's, so it is set where a
  served worker process starts (``run``, the spawned workers' ``app_from_env``), never by
  ``create_app``: an application that embeds the app, or a test process, keeps its own.
"""

from __future__ import annotations

import gc

from threadpoolctl import threadpool_limits

#: Net container allocations between two young collections in a serving worker (CPython's
#: default: 700); a threshold the process already has above it is kept (module docstring).
YOUNG_COLLECTION_EVERY = 10_000


def settle_worker(*, collect: bool) -> None:
    """Limit the compute threads and freeze the model (see module docstring); call on the thread
    that serves requests, after a model is loaded (native libraries are found once imported).
    ``collect`` first frees cyclic garbage (a full pass: do it at start-up, not while serving)."""
    threadpool_limits(limits=1)
    if collect:
        gc.collect()
    gc.freeze()


def collect_young_less_often() -> None:
    """Raise this process's young threshold to ``YOUNG_COLLECTION_EVERY`` (module docstring); call
    only in a process that is a served worker. A higher threshold, or 0 (collections turned off),
    is left as it is; ``gc.set_threshold`` keeps the older generations' thresholds."""
    young = gc.get_threshold()[0]
    if 0 < young < YOUNG_COLLECTION_EVERY:
        gc.set_threshold(YOUNG_COLLECTION_EVERY)
