"""Are the pipeline's answers unchanged? Writes every answer for a fixed draw of users to JSON, or
counts how many differ from such a file (``--against``): the accuracy check of issue #19 for
changes meant to make the request path cheaper without touching what it returns.

Users are drawn as ``answer_latency.py`` draws them (known users, seed 0) plus a tenth unknown
visitors with recent items, answered in batches of ``--batch`` (what coalescing does under load)
and one by one. Lists, scores, tiers, sources and the anchors of reasons are compared exactly.
``--seen N``: every second known user has also "seen since the release" the ``N`` best items
the first ANN source's index finds for them (``extra_seen``: more than a stored list has room
for past ``STORED_MARGIN``, so those users are searched each request). ``--recent N``: every
known user also has its ``N`` best items by that index as ``recent`` (as the served route adds a
known user's online items; items it would likely be served, so one not excluded shows).
``--categories N``: every N-th user is asked again, alone, for two of the catalogue's categories
drawn at random (the category filter and its popularity fallback). To
compare with an older checkout, write its file with this script and that checkout's ``src``
first on ``PYTHONPATH``.

    .venv/bin/python benchmarks/answer_identity.py /tmp/large/model --out /tmp/before.json
    .venv/bin/python benchmarks/answer_identity.py /tmp/large/model --against /tmp/before.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
from calibration import calibration_line

CLOCK = 1_764_763_200.0  # 2025-12-03 12:00 UTC, a Wednesday


def answers(
    model_dir: Path,
    users: int,
    batch: int,
    seen: int = 0,
    recent_n: int = 0,
    categories: int = 0,
) -> dict[str, list[object]]:
    """Every list as plain JSON values, keyed ``batch`` (coalesced) and ``single``."""
    from recsmith.pipeline.artifact import load_artifact

    pipe = load_artifact(model_dir)
    # the compiled ranker answers, not LightGBM's predict while it is being built
    getattr(pipe.ranker, "wait_compiled", lambda: None)()
    wait_row_kernel()
    # a fixed "now": a query's time (the ranker's hour and day features) is the clock's, so two
    # runs an hour apart would differ for that alone (448 of 660 answers across 21:00 UTC)
    pipe.clock = lambda: CLOCK
    known = np.asarray(pipe.bundle.users.external_ids, dtype=object)
    rng = np.random.default_rng(0)
    drawn = list(rng.choice(known, size=users))
    items = np.asarray(pipe.bundle.items.external_ids, dtype=object)
    visitors = [f"visitor-{n}" for n in range(users // 10)]
    recent = _best_items(pipe, drawn, recent_n) + [list(rng.choice(items, 3)) for _ in visitors]
    who = drawn + visitors
    extra = [s if q % 2 == 0 else [] for q, s in enumerate(_best_items(pipe, drawn, seen))]
    extra += [[]] * len(visitors)
    out: dict[str, list[object]] = {"batch": [], "single": []}
    for start in range(0, len(who), batch):
        part = slice(start, start + batch)
        out["batch"].extend(_plain(pipe, who[part], recent[part], extra[part]))
    for user, latest, had in zip(who, recent, extra, strict=True):
        out["single"].extend(_plain(pipe, [user], [latest], [had]))
    # every ``categories``-th user asked again, alone and in batches, for two of the
    # catalogue's categories (the category filter and its popularity fallback)
    catalogue = pipe.items_catalog  # type: ignore[attr-defined]
    names = sorted({c for item in catalogue for c in item.categories})
    if categories and names:
        pick = np.random.default_rng(3)
        asked = list(range(0, len(who), categories))
        wanted = [pick.choice(names, 2, replace=False).tolist() for _ in asked]
        out["categories"] = []
        for q, cats in zip(asked, wanted, strict=True):
            out["categories"].extend(
                _plain(pipe, [who[q]], [recent[q]], [extra[q]], categories=cats)
            )
    return out


def wait_row_kernel() -> None:
    """Wait for the compiled feature columns and anchor search where the checkout has them
    (``ranking.row_kernel``), so that they answer rather than numpy's path while they build."""
    if importlib.util.find_spec("recsmith.ranking.row_kernel") is not None:
        from recsmith.ranking import row_kernel

        if not row_kernel.wait(300):
            print(f"row kernel not compiled: {row_kernel.unavailable_reason()}", flush=True)


def _best_items(pipe: object, users: list[str], n: int) -> list[list[str]]:
    """Each user's ``n`` best items by the first ANN index: items they are likely served, so
    that one not excluded as seen or recent would show."""
    if n == 0 or not pipe.indexes:  # type: ignore[attr-defined]
        return [[] for _ in users]
    name, index = next(iter(pipe.indexes.items()))  # type: ignore[attr-defined]
    vectors = pipe.models[name].embeddings[0]  # type: ignore[attr-defined]
    idx = pipe.bundle.users.to_index(np.asarray(users, dtype=object))  # type: ignore[attr-defined]
    best = index.search(vectors[idx], n).ids
    names = np.asarray(pipe.bundle.items.external_ids, dtype=object)  # type: ignore[attr-defined]
    return [names[row[row >= 0]].tolist() for row in best]


def _plain(
    pipe: object,
    users: list[str],
    recent: list[list[str]],
    seen: list[list[str]],
    categories: list[str] | None = None,
) -> list[object]:
    ans = pipe.answer(  # type: ignore[attr-defined]
        users, 10, recent=recent, extra_seen=seen, categories=categories or ()
    )
    return [
        [u, tier, ids.tolist(), scores.tolist(), sources, anchors]
        for u, tier, ids, scores, sources, anchors in zip(
            users,
            ans.tiers,
            ans.lists.item_ids,
            ans.lists.scores,
            ans.sources,
            ans.anchors,
            strict=True,
        )
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--users", type=int, default=600)
    parser.add_argument("--batch", type=int, default=12)
    parser.add_argument("--seen", type=int, default=0, help="items seen since, every 2nd user")
    parser.add_argument("--recent", type=int, default=0, help="recent items, every known user")
    parser.add_argument(
        "--categories",
        type=int,
        default=0,
        metavar="N",
        help="every N-th user also asked for two categories",
    )
    parser.add_argument("--out", type=Path, help="write the answers here")
    parser.add_argument("--against", type=Path, help="count the answers that differ from these")
    args = parser.parse_args()
    print(calibration_line(), flush=True)
    now = answers(args.model_dir, args.users, args.batch, args.seen, args.recent, args.categories)
    if args.out is not None:
        args.out.write_text(json.dumps(now))
    mismatch = sum(a != b for a, b in zip(now["batch"], now["single"], strict=True))
    print(f"{len(now['batch'])} users: {mismatch} differ between batch and single answers")
    if args.against is not None:
        before = json.loads(args.against.read_text())
        missing = sorted(set(now) - set(before))
        if missing:  # e.g. --categories against a file written without it
            parser.error(f"{args.against} holds no {', '.join(missing)} answers to compare")
        for key in now:
            differ = sum(a != b for a, b in zip(now[key], before[key], strict=True))
            print(f"{key}: {differ} of {len(now[key])} answers differ from {args.against}")


if __name__ == "__main__":
    main()
