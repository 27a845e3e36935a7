"""``Pipeline.queries``, ``candidate_features``, the ranker's scores, ``Candidates.rescored`` and
the naming of ``Pipeline.answer``'s final rows (``anchor_items``, ``Candidates.source_names``)
of two checkouts in one process, part by part: where the ranking stage's and the queries' CPU
goes at a coalesced batch's size, and what a change to them saved (BENCHMARKS §108, §118).

As ``answer_ab.py``: the other checkout is loaded as ``recsmith_base``, both load the same model,
and each round times every part of both over the same batches (40 batches of ``--batch`` known
users, each with its stored items as ``extra_seen`` when ``--store`` is given, as a served call
passes them, and with ``--recent N`` N catalogue items drawn for each as its ``recent``, as the
served route adds a known user's online items), the sides' order flipped every round. Thread CPU
per call: the median, minimum and maximum of the rounds. Before timing, each part's outputs are
compared between the checkouts (the exclusions and recent rows, the feature values, the scores,
the rescored order, each final row's anchor and source names): ``identical`` says whether all
agree.
``ranking`` adds up the medians of the parts from the features to the names.

    .venv/bin/python benchmarks/query_rank_ab.py /tmp/large/model --against /tmp/main/src \\
        --store sqlite:////tmp/large/store.sqlite --batch 16 --rounds 11 --recent 3
"""

from __future__ import annotations

import importlib.util
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")  # as each server worker runs
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
from answer_ab import ab_parser, base_importable, stored_items
from calibration import calibration_line

PARTS = ("queries", "features", "score", "rescored", "anchors", "names", "answer")
#: the parts ``ranking`` adds up: what the ranking stage and the naming of the lists cost
RANKING = ("features", "score", "rescored", "anchors", "names")
BATCHES = 40
CLOCK = 1_764_763_200.0  # a fixed "now": the features' hour and day are the clock's


def side(
    package: str, model_dir: Path, users: np.ndarray, seen: Any, recent: dict[str, list[str]]
) -> dict[str, Any]:
    """One checkout's pipeline with each batch's queries, candidates, features and scores."""
    art = __import__(f"{package}.pipeline.artifact", fromlist=["load_artifact"])
    training = __import__(f"{package}.pipeline.training", fromlist=["retrieve"])
    features = __import__(f"{package}.ranking.features", fromlist=["candidate_features"])
    anchors = __import__(f"{package}.pipeline.anchors", fromlist=["anchor_items"])
    pipe = art.load_artifact(model_dir)
    getattr(pipe.ranker, "wait_compiled", lambda: None)()
    # a checkout's compiled feature columns and anchor search, where it has them, answer
    if importlib.util.find_spec(f"{package}.ranking.row_kernel") is not None:
        kernel = __import__(f"{package}.ranking.row_kernel", fromlist=["wait"])
        print(json.dumps({"side": package, "row_kernel": kernel.wait(300)}), flush=True)
    pipe.clock = lambda: CLOCK
    n = users.shape[1]
    args = [
        ([seen[u] for u in row] if seen else None, [recent.get(u, []) for u in row], [{}] * n)
        for row in users
    ]
    queries = [pipe.queries(row, *a, False) for row, a in zip(users, args, strict=True)]
    cands = [
        training.retrieve(pipe.sources, pipe.quotas, q, pipe.weights, ordered=False)
        for q in queries
    ]
    rows = [
        features.candidate_features(pipe.state, q, c) for q, c in zip(queries, cands, strict=True)
    ]
    scores = [pipe.ranker.score(f) for f in rows]
    # each batch's final rows, as ``answer`` names them (the top 10, as ``parts`` asks)
    plain = {"timings": None, "rules": (), "diversity": None, "categories": ()}
    top = [
        pipe._top_k(row, 10, extra_seen=a[0], recent=a[1], context=a[2], include_seen=None, **plain)
        for row, a in zip(users, args, strict=True)
    ]
    return {
        "pipe": pipe,
        "args": args,
        "queries": queries,
        "cands": cands,
        "features": rows,
        "scores": scores,
        "candidate_features": features.candidate_features,
        "finals": [(final, q.recent) for _, final, q, _ in top],
        "anchor_items": anchors.anchor_items,
    }


def identical(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether every part gave the same outputs on both sides."""
    for x, y in zip(a["queries"], b["queries"], strict=True):
        if (x.exclude != y.exclude).nnz or (x.recent != y.recent).nnz:
            return False
        if not np.array_equal(x.users, y.users):
            return False
    for f, g, s, t in zip(a["features"], b["features"], a["scores"], b["scores"], strict=True):
        if not (np.array_equal(f, g, equal_nan=True) and np.array_equal(s, t)):
            return False
    for c, d, s in zip(a["cands"], b["cands"], a["scores"], strict=True):
        r, q = c.rescored(s), d.rescored(s)
        if not (np.array_equal(r.items, q.items) and np.array_equal(r.query, q.query)):
            return False
    for (f, recent), (g, _) in zip(a["finals"], b["finals"], strict=True):
        named = a["anchor_items"](f, recent, a["pipe"].anchor_matrices)
        if not np.array_equal(named, b["anchor_items"](g, recent, b["pipe"].anchor_matrices)):
            return False
        if f.source_names() != g.source_names():
            return False
    return True


def parts(s: dict[str, Any], users: np.ndarray) -> dict[str, Callable[[int], object]]:
    """Each part as a call on batch ``i``."""
    pipe, args = s["pipe"], s["args"]
    return {
        "queries": lambda i: pipe.queries(users[i], *args[i], False),
        "features": lambda i: s["candidate_features"](pipe.state, s["queries"][i], s["cands"][i]),
        "score": lambda i: pipe.ranker.score(s["features"][i]),
        "rescored": lambda i: s["cands"][i].rescored(s["scores"][i]),
        "anchors": lambda i: s["anchor_items"](*s["finals"][i], pipe.anchor_matrices),
        "names": lambda i: s["finals"][i][0].source_names(),
        "answer": lambda i: pipe.answer(
            users[i], 10, extra_seen=args[i][0], recent=args[i][1], context=args[i][2]
        ),
    }


def main() -> None:
    parser = ab_parser(__doc__)
    parser.add_argument("--batch", type=int, default=16, help="users per call")
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument(
        "--recent",
        type=int,
        default=0,
        metavar="N",
        help="catalogue items drawn as each user's recent",
    )
    args = parser.parse_args()
    print(calibration_line(), flush=True)
    with base_importable(args.against):
        from recsmith.pipeline.artifact import load_artifact

        bundle = load_artifact(args.model_dir).bundle
        known = np.asarray(bundle.users.external_ids, dtype=object)
        users = np.random.default_rng(1).choice(known, size=(BATCHES, args.batch))
        seen = stored_items(args.store, users) if args.store else None
        items = np.asarray(bundle.items.external_ids, dtype=object)
        draw = np.random.default_rng(2)
        recent = {u: draw.choice(items, args.recent).tolist() for u in np.unique(users)}
        sides = {
            "against": side("recsmith_base", args.model_dir, users, seen, recent),
            "this": side("recsmith", args.model_dir, users, seen, recent),
        }
        same = identical(sides["against"], sides["this"])
        calls = {name: parts(s, users) for name, s in sides.items()}
        cpu: dict[str, dict[str, list[float]]] = {n: {p: [] for p in PARTS} for n in sides}
        for r in range(args.rounds):
            for name in list(sides)[:: 1 if r % 2 == 0 else -1]:
                for part, call in calls[name].items():
                    started = time.thread_time()
                    for i in range(BATCHES):
                        call(i)
                    cpu[name][part].append((time.thread_time() - started) / BATCHES * 1e6)
    rows = sum(len(c) for c in sides["this"]["cands"]) / BATCHES
    print(
        json.dumps(
            {"batch": args.batch, "recent": args.recent, "candidate_rows": rows, "identical": same}
        )
    )
    for part in PARTS:
        a, b = cpu["against"][part], cpu["this"][part]
        ratio = statistics.median(b) / statistics.median(a)
        print(
            json.dumps(
                {
                    "part": part,
                    "against_us": [round(f(a), 1) for f in (statistics.median, min, max)],
                    "this_us": [round(f(b), 1) for f in (statistics.median, min, max)],
                    "ratio": round(ratio, 3),
                }
            )
        )
    a, b = (sum(statistics.median(cpu[n][p]) for p in RANKING) for n in sides)
    ranking = {"against_us": round(a, 1), "this_us": round(b, 1), "ratio": round(b / a, 3)}
    print(json.dumps({"part": "ranking", **ranking}))
    print(json.dumps({"loadavg": os.getloadavg()}))


if __name__ == "__main__":
    main()
