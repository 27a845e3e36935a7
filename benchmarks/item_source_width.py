"""A co-occurrence source's ``sparse_from_items`` on synthetic catalogues of any width: what a
batch costs at 100,000, 200,000 or a million items, where ``product_top_k``'s accumulator of
``queries × items`` cells no longer holds a batch (BENCHMARKS §79, corrected after review).

The association gives each item 5 random neighbours (float32 scores, seed 0); each query has 5
random recent items (weight 1), which it also excludes. ``--batches``: the median process CPU of
40 calls per batch size (5 warm-up calls first); ``--offline N``: 3 calls of one batch of ``N``
queries. The accumulator's pages are touched once first, as a long-running server's are. Run it
once per tree (``PYTHONPATH``), alternating the trees, and compare the runs made side by side.

    .venv/bin/python benchmarks/item_source_width.py 1000000 --offline 5000
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
from calibration import calibration_line
from scipy import sparse


def association(n_items: int, rng: np.random.Generator) -> sparse.csr_array:
    """Each item's 5 random neighbours, random float32 scores."""
    rows = np.repeat(np.arange(n_items), 5)
    cols = rng.integers(0, n_items, len(rows))
    scores = rng.random(len(rows)).astype(np.float32)
    matrix = sparse.csr_array((scores, (rows, cols)), shape=(n_items, n_items))
    matrix.sum_duplicates()
    return matrix


def recent(n: int, n_items: int, rng: np.random.Generator) -> sparse.csr_array:
    """``n`` queries of 5 random recent items each, weight 1."""
    q = np.repeat(np.arange(n), 5)
    history = sparse.csr_array(
        (np.ones(len(q), np.float32), (q, rng.integers(0, n_items, len(q)))), shape=(n, n_items)
    )
    history.sum_duplicates()
    history.data[:] = 1
    return history


def touch_accumulator() -> None:
    """Fault in the kept float32 accumulator's pages, whichever version of it the tree has
    (none at the session start)."""
    try:
        from recsmith.models import product_top_k as module
    except ImportError:
        return
    kept = getattr(module, "_kept", None)
    if kept is not None:
        kept("grid", module.GRID_CELLS, np.dtype(np.float32))[:] = 0
    else:
        module._accumulator(module.GRID_CELLS, np.dtype(np.float32))[:] = 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n_items", type=int)
    parser.add_argument("--batches", default="1,8,64,512", help="queries per call, comma-separated")
    parser.add_argument("--offline", type=int, default=0, help="also time one batch of N queries")
    args = parser.parse_args()
    print(calibration_line(), flush=True)
    from recsmith.models.cooccurrence import Cooccurrence

    rng = np.random.default_rng(0)
    model = Cooccurrence()
    model.association_ = association(args.n_items, rng)
    touch_accumulator()
    for n in [int(b) for b in args.batches.split(",") if b]:
        calls = [recent(n, args.n_items, rng) for _ in range(40)]
        for history in calls[:5]:
            model.sparse_from_items(history, 50, history.copy())
        spent = []
        for history in calls:
            exclude = history.copy()
            start = time.process_time()
            model.sparse_from_items(history, 50, exclude)
            spent.append(time.process_time() - start)
        print(f"items {args.n_items} batch {n}: median {np.median(spent) * 1e6:.0f} µs", flush=True)
    if args.offline:
        history = recent(args.offline, args.n_items, rng)
        model.sparse_from_items(history, 50, history.copy())
        spent = []
        for _ in range(3):
            exclude = history.copy()
            start = time.process_time()
            model.sparse_from_items(history, 50, exclude)
            spent.append(time.process_time() - start)
        ms = ", ".join(f"{s * 1e3:.0f}" for s in spent)
        print(f"items {args.n_items} offline {args.offline}: {ms} ms", flush=True)


if __name__ == "__main__":
    main()
