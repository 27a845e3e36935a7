"""An item-to-item source's ``sparse_from_items`` of two checkouts on the same inputs: the inputs
the co-occurrence source of a release meets in coalesced ``Pipeline.answer`` calls, then both
trees' models answer exactly those, alternately, call by call (BENCHMARKS §79).

``answer_ab.py`` times the whole call, where this source is a tenth; here its own cost shows.
The release's co-occurrence source is loaded by both trees (the other checkout's package copied as
``recsmith_base``, as ``answer_ab.py`` does). Each batch of known users (seed 0) is answered once
by this tree's pipeline, recording each ``sparse_from_items`` call's recent items, ``k`` and
exclusions; then the recorded calls are replayed on both models, the order flipped every call,
and every list must match the other tree's bit for bit (items, scores, ties in their order).
Process CPU time per call, medians.

    .venv/bin/python benchmarks/item_source_ab.py /tmp/large/model --against /tmp/main/src
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
from answer_ab import renamed_copy
from calibration import calibration_line


def recorded_calls(model_dir: Path, source: str, batch: int, calls: int) -> list[tuple[Any, ...]]:
    """(history, k, exclude) of each ``sparse_from_items`` call of source ``source`` over
    ``calls`` coalesced answers of ``batch`` known users."""
    from recsmith.models.base import Recommender
    from recsmith.pipeline.artifact import load_artifact

    pipe = load_artifact(model_dir)
    model = next(s for s in pipe.sources if s.name == source)
    model = getattr(model, "source", model).model
    seen: list[tuple[Any, ...]] = []
    original = Recommender.sparse_from_items

    def recording(
        self: Any, history: Any, k: int, exclude: Any = None, drop_own: bool = True
    ) -> Any:
        if self is model:
            seen.append((history, k, exclude))
        return original(self, history, k, exclude, drop_own)

    Recommender.sparse_from_items = recording  # type: ignore[method-assign]
    try:
        known = np.asarray(pipe.bundle.users.external_ids, dtype=object)
        for row in np.random.default_rng(0).choice(known, size=(calls, batch)):
            pipe.answer(row, 10)
    finally:
        Recommender.sparse_from_items = original  # type: ignore[method-assign]
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--against", type=Path, required=True, help="the other checkout's src")
    parser.add_argument("--source", default="together", help="the item-to-item source's name")
    parser.add_argument("--batches", default="1,16,64", help="users per answer, comma-separated")
    parser.add_argument("--calls", type=int, default=60, help="answers recorded per batch size")
    parser.add_argument("--repeat", type=int, default=5, help="replays of the recorded calls")
    args = parser.parse_args()
    print(calibration_line(), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        renamed_copy(args.against, Path(tmp))
        sys.path.insert(0, tmp)
        from recsmith_base.models.registry import model_class as base_class  # type: ignore

        from recsmith.models.registry import model_class

        folder = args.model_dir / "sources" / args.source
        name = json.loads((folder / "model.json").read_text())["name"]
        models = {
            "against": base_class(name).load(folder),
            "this": model_class(name).load(folder),
        }
        for batch in (int(b) for b in args.batches.split(",")):
            calls = recorded_calls(args.model_dir, args.source, batch, args.calls)
            cpu: dict[str, list[float]] = {side: [] for side in models}
            for history, k, exclude in calls:
                mine, theirs = (models[s].sparse_from_items(history, k, exclude) for s in models)
                same = np.array_equal(mine.ids, theirs.ids) and np.array_equal(
                    mine.scores.view(np.int32), theirs.scores.view(np.int32)
                )
                if not same:
                    raise SystemExit(f"batch {batch}: the two trees' lists differ")
            for rep in range(args.repeat):
                for i, (history, k, exclude) in enumerate(calls):
                    for side in list(models)[:: 1 if (i + rep) % 2 == 0 else -1]:
                        started = time.process_time()
                        models[side].sparse_from_items(history, k, exclude)
                        cpu[side].append(time.process_time() - started)
            med = {side: statistics.median(v) * 1e6 for side, v in cpu.items()}
            entries = [int(h.nnz) for h, _, _ in calls]
            print(
                json.dumps(
                    {
                        "batch": batch,
                        "calls": len(calls),
                        "recent_items_median": statistics.median(entries),
                        "identical_lists": True,
                        **{f"{s}_us_per_call": round(v, 1) for s, v in med.items()},
                        **{f"{s}_us_per_user": round(v / batch, 2) for s, v in med.items()},
                        "ratio_this_to_against": round(med["this"] / med["against"], 3),
                        "loadavg": os.getloadavg(),
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
