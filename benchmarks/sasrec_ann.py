"""SASRec's vectors at the load test's scale: recall of the shipped ItemIndex against exact search.

    .venv/bin/python benchmarks/sasrec_ann.py EPOCHS   # after serve_load.py built /tmp/large

Trains SASRec (needs torch: ``pip install 'recsmith[torch]'`` or torch==2.13.0) on the load
test's 2.28M simulated events (50,000 users x ~94,000 items seen), builds ``ItemIndex`` over its
item vectors as ``build_sources`` does, and compares the index's top-100 / top-10 for 500 random
users' sequence vectors with exact inner-product search.
"""

import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import numpy as np
from calibration import calibration_line

from recsmith.config import EventSettings
from recsmith.features.interactions import Interactions
from recsmith.models.registry import create
from recsmith.models.topk import top_k
from recsmith.retrieval.ann import ItemIndex, recall_at
from recsmith.store.sqlite import SQLiteStore

print(calibration_line(), flush=True)
epochs = int(sys.argv[1])
store = SQLiteStore("/tmp/large/store.sqlite")
frame = next(store.scan(batch_size=10_000_000))
data = Interactions.from_events(frame, EventSettings().weights)
print("data", data.matrix.shape, len(frame), flush=True)
t = time.perf_counter()
model = create("sasrec", epochs=epochs, num_threads=2).fit(data)
print(f"fit {epochs} epochs {time.perf_counter() - t:.0f}s", flush=True)
users, items = model.embeddings
t = time.perf_counter()
index = ItemIndex(items)
print(f"index build {time.perf_counter() - t:.1f}s")
rng = np.random.default_rng(0)
q = users[rng.choice(len(users), 500, replace=False)]
print(
    "recall@100",
    round(recall_at(index, q, items, 100), 3),
    "recall@10",
    round(recall_at(index, q, items, 10), 3),
)
norms = np.linalg.norm(items, axis=1)
print("item norm spread (p5, p50, p95)", np.percentile(norms, [5, 50, 95]).round(2))
t = time.perf_counter()
index.search(q, 100)
print(f"search {1000 * (time.perf_counter() - t) / len(q):.3f} ms/query")
# how sensitive: the same index scanning fewer of its cells, and how evenly the cells fill
cells = int(index.index.nlist)
for share in (0.02, 0.05, 0.1, 0.25):
    probe = ItemIndex(items, nprobe=max(1, int(cells * share)))
    print(f"cells scanned {share:.0%}: recall@100 {recall_at(probe, q, items, 100):.3f}")
# how personal the exact lists are: a recall of 1 is trivial if every user has the same top-100
exact = top_k(q @ items.T, 100).ids
distinct = len(np.unique(exact))
pairs = rng.choice(len(q), (200, 2))
overlap = np.mean([len(np.intersect1d(exact[a], exact[b])) / 100 for a, b in pairs if a != b])
print(
    f"exact top-100 over {len(q)} users: {distinct} distinct items,"
    f" mean pairwise overlap {overlap:.2f}"
)
sizes = np.array([index.index.invlists.list_size(c) for c in range(cells)])
print(f"{cells} cells, items per cell p5/p50/p95/max", np.percentile(sizes, [5, 50, 95, 100]))
