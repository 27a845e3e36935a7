"""A release's stored per-user ANN lists (``ItemIndex.known``): what they cost to write and to
keep, whether they are the lists a request's own search finds, and how often a request still
searches.

* the seconds ``known_lists`` takes for every user, and the bytes the lists take;
* agreement: for ``--users`` drawn users, the stored list against the index's search of the
  same users in batches of 1, 16 and 64 (faiss's quantizer scores fewer than 20 queries one by
  one and more by BLAS, so the cells probed could differ in the last bits): lists that differ
  anywhere in their ``quota + STORED_MARGIN`` items;
* fallbacks: the users whose training exclusions leave fewer than the quota in their stored
  list (those search each request; exclusions added online only add to them), and how many
  of a stored list's items its user's training exclusions take (what the margin must hold).

``--write`` stores the lists into the release (one written before them), as ``save_pipeline``
now does, so ``answer_ab.py`` can compare the two on the same release.

    .venv/bin/python benchmarks/ann_known.py /tmp/shop-x/model --write
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
from calibration import calibration_line

from recsmith.array_files import save_arrays
from recsmith.pipeline.artifact import load_pipeline
from recsmith.retrieval.ann import STORED_MARGIN, ANNSource, known_lists
from recsmith.retrieval.sources import drop_excluded
from recsmith.sparse_rows import stored_in_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--users", type=int, default=6400)
    parser.add_argument("--write", action="store_true", help="store the lists in the release")
    args = parser.parse_args()
    print(calibration_line(), flush=True)
    pipe = load_pipeline(args.model_dir)
    quotas = {s.name: s.quota for s in pipe.config.retrieval.sources}
    for source in pipe.sources:
        if not isinstance(source, ANNSource):
            continue
        depth = quotas[source.name] + STORED_MARGIN
        vectors = source.user_vectors
        started = time.process_time()
        lists = known_lists(source.index, vectors, depth)
        spent = time.process_time() - started
        size = lists.ids.nbytes + lists.scores.nbytes
        print(
            f"{source.name}: {len(vectors):,} users x {depth} items: {spent:.1f} s CPU, "
            f"{size / 2**20:.1f} MiB"
        )
        drawn = np.random.default_rng(0).choice(len(vectors), min(args.users, len(vectors)), False)
        for batch in (1, 16, 64):
            differ = 0
            for start in range(0, len(drawn), batch):
                users = drawn[start : start + batch]
                live = source.index.search(vectors[users], depth)
                differ += int((live.ids != lists.ids[users]).any(axis=1).sum())
            print(f"  batches of {batch}: {differ} of {len(drawn)} stored lists differ")
        everyone = np.arange(len(vectors), dtype=np.int32)
        seen = pipe.bundle.exclusions(everyone, None)
        kept = drop_excluded(lists, seen, quotas[source.name])
        short = int(((kept.ids[:, -1] < 0) & (lists.ids[:, -1] >= 0)).sum())
        print(f"  {short} of {len(vectors):,} users' training exclusions overflow the margin")
        inside = stored_in_rows(seen, everyone, np.maximum(lists.ids, 0)).sum(axis=1)
        cuts = np.percentile(inside, [50, 99, 99.9, 100]).tolist()
        shares = " / ".join(f"{c:g}" for c in cuts)
        print(f"  excluded items in a stored list, median / p99 / p99.9 / max: {shares}")
        if args.write:
            where = args.model_dir / "ann" / f"{source.name}.known"
            save_arrays(where, {"ids": lists.ids, "scores": lists.scores})
            print(f"  written to {where}")


if __name__ == "__main__":
    main()
