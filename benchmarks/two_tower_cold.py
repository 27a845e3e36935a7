"""The two-tower model on cold users, cold items and the warm temporal split (#15).

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/two_tower_cold.py   # from the repo root

Datasets: ml-100k (``u.user``: age, gender, occupation, zip code; ``u.item``: genres) and
ml-latest-small (genres and tags; no profiles). NDCG@10, seen items excluded, 95 % paired
bootstrap intervals over the same users against the protocol's reference.

**Tags are events too.** ml-latest-small's ``tags.csv`` records who applied each tag and when;
the importer's catalogue carries them all. Every protocol keeps only the tags its training part
could have seen (``tagged``): applied before its time cut, and none by a held-out user — a tag
applied after the cut marks an item someone is about to watch (200 of the 222 tags on items
first seen after the (b) cut were), which had cold items at 0.1036 against content's 0.0311.

(a) **Cold users.** A fifth of the users (seed 1) held out entirely; the rest's events train.
    ``profile``: the held-out users served from their profile alone (ml-100k), against
    ``popular`` and segment popularity (``segments.SegmentPopularity``, shrinkage 10, the
    default). ``first 3``: each held-out user's first 3 events (time order) given as history,
    scored on the rest, against ``popular`` and EASE from those items (``recommend_from_items``).
(b) **Cold items.** A global time cut at the 0.8 quantile of event times; items first seen after
    it are new. Known users with a post-cut event on a new item rank the new items only
    (``candidates``), against the content model (TF-IDF over categories, tags and titles).
(c) **Warm.** ``temporal:0.8``, as every other table here, against ``popular``, EASE and iALS.

Hyper-parameters (``GRID``: epochs × dimensions, fixed before any test part was scored) are
chosen per protocol and dataset on a validation split carved from that protocol's training part
by the same protocol (a fifth of the training users; a cut at the training part's 0.8 quantile),
then the chosen values are refitted on the training part and scored on the test part once.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from calibration import calibration_line
from context_features import profiles
from pipeline_vs_models import DATASETS, ROOT, load
from scipy import sparse
from segment_fallback import scored as segment_scored
from segment_fallback import time_cut

from recsmith.config import EventSettings
from recsmith.evaluation.metrics import ndcg_at_k
from recsmith.evaluation.significance import bootstrap_ci
from recsmith.events.importers._catalog import tags_by_item
from recsmith.features.interactions import Interactions
from recsmith.features.items import ItemCatalog
from recsmith.models.registry import create
from recsmith.models.two_tower import TwoTower

K = 10
FIRST = 3  # events a warm-started cold user has shown
GRID = [{"epochs": epochs, "dim": dim} for epochs in (5, 15) for dim in (16, 64)]
BASE: dict[str, Any] = {"num_threads": 1}
SEGMENT_SHRINKAGE = 10.0
CPU: dict[str, float] = {}  # model → CPU seconds of its fits


@dataclass
class Task:
    """Training interactions and who is scored on what."""

    train: Interactions
    users: np.ndarray  # user indices scored
    truth: sparse.csr_array  # [len(users), n_items]
    history: sparse.csr_array | None = None  # warm start: rows of first items, time order
    candidates: np.ndarray | None = None  # items that may be listed (cold items)
    tags: pd.DataFrame | None = None  # the tag events ``train``'s catalogue was built from


def fitted(name: str, data: Interactions, **params: Any) -> Any:
    started = time.process_time()
    model = create(name, **params).fit(data)
    CPU[name] = CPU.get(name, 0.0) + time.process_time() - started
    return model


def per_user(model: Any, task: Task) -> np.ndarray:
    """NDCG@K of each scored user under ``model``, as the task serves them."""
    if isinstance(model, _Segments):
        return segment_scored(model.data, task.users, task.truth, model.prof, SEGMENT_SHRINKAGE)
    if task.history is not None:
        if isinstance(model, TwoTower):
            profiles = [task.train.profiles[u] if task.train.profiles else None for u in task.users]
            top = model.recommend_for_profiles(profiles, K, history=task.history)
        elif model.name == "popular":
            top = model.recommend(np.zeros(len(task.users), np.int64), K, exclude=task.history)
        else:
            top = model.recommend_from_items(task.history, K)
    else:
        seen = task.train.matrix[task.users]
        top = model.recommend(task.users, K, exclude=seen, candidates=task.candidates)
    return ndcg_at_k(top.ids, task.truth, K)


def choose(val: Task) -> tuple[dict[str, Any], list[str]]:
    """The GRID point with the best validation NDCG@10, and a line per point."""
    scores = [per_user(fitted("two_tower", val.train, **BASE, **p), val).mean() for p in GRID]
    best = int(np.argmax(scores))
    lines = [
        f"{p} {s:.4f}{' *' if i == best else ''}"
        for i, (p, s) in enumerate(zip(GRID, scores, strict=True))
    ]
    return GRID[best], lines


def compare(
    task: Task, models: dict[str, Callable[[Interactions], Any]], reference: str
) -> list[str]:
    scored = {name: per_user(make(task.train), task) for name, make in models.items()}
    ref = scored[reference]
    rows = []
    for name, got in scored.items():
        diff = got - ref
        ci = "" if name == reference else "[{:+.4f}, {:+.4f}]".format(*bootstrap_ci(diff))
        rows.append(f"| {name} | {got.mean():.4f} | {diff.mean():+.4f} | {ci} |")
    return [
        f"{len(task.users)} users; reference {reference}",
        "",
        "| model | NDCG@10 | vs reference | 95 % paired CI |",
        "|---|---:|---:|---:|",
        *rows,
        "",
    ]


def binary(matrix: sparse.csr_array) -> sparse.csr_array:
    out = sparse.csr_array(matrix > 0, dtype=np.float32)
    out.eliminate_zeros()
    return out


# ---- tags ------------------------------------------------------------------------------------


def tag_events(folder: str) -> pd.DataFrame | None:
    """``tags.csv`` as events (user_id, item_id, tag, ts in Unix microseconds like
    ``Interactions.event_ts``); None for a dataset without one."""
    path = ROOT / folder / "tags.csv"
    if not path.exists():
        return None
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    return pd.DataFrame(
        {
            "user_id": frame["userId"],
            "item_id": frame["movieId"],
            "tag": frame["tag"],
            "ts": frame["timestamp"].astype(np.int64) * 1_000_000,
        }
    )


def tagged(data: Interactions, tags: pd.DataFrame | None) -> Interactions:
    """``data`` with its catalogue's tags rebuilt from ``tags`` alone (as the importer builds
    them), so a protocol's training part carries only the tags it could have seen."""
    if tags is None or data.catalog is None:
        return data
    by_item = tags_by_item(tags["item_id"].to_numpy(object), tags["tag"].to_numpy(object))
    rebuilt = tuple(tuple(by_item.get(i, ())) for i in data.catalog.item_ids)
    return dataclasses.replace(data, catalog=dataclasses.replace(data.catalog, tags=rebuilt))


def cut_at(whole: Interactions, share: float) -> int:
    """The time ``segment_fallback.time_cut`` splits at: events before it train."""
    return int(np.quantile(whole.event_ts, 1.0 - share, method="higher"))


# ---- protocols -------------------------------------------------------------------------------


def cold_users(whole: Interactions, tags: pd.DataFrame | None, seed: int, first: int) -> Task:
    """A fifth of the users with events held out, and their tags; ``first`` > 0: their first
    events as history, the rest as truth."""
    has = np.flatnonzero(np.bincount(whole.event_users, minlength=whole.n_users) > 0)
    rng = np.random.default_rng(seed)
    held = np.zeros(whole.n_users, bool)
    held[rng.choice(has, size=len(has) // 5, replace=False)] = True
    if tags is not None:
        tags = tags[~tags["user_id"].isin(whole.users.to_external(np.flatnonzero(held)))]
    train = tagged(whole.subset(~held[whole.event_users]), tags)
    users = np.flatnonzero(held)
    if not first:
        return Task(train, users, binary(whole.matrix)[users], tags=tags)
    mine = held[whole.event_users]
    u, i, ts = whole.event_users[mine], whole.event_items[mine], whole.event_ts[mine]
    order = np.lexsort((ts, u))
    u, i = u[order], i[order]
    rank = np.arange(len(u)) - np.searchsorted(u, u)  # position within the user's events
    row = np.searchsorted(users, u)
    early = rank < first
    history = sparse.csr_array(
        (np.ones(int(early.sum()), np.float32), (row[early], i[early])),
        shape=(len(users), whole.n_items),
    )
    history.sum_duplicates()
    history.data[:] = 1.0
    later = sparse.csr_array(
        (np.ones(int((~early).sum()), np.float32), (row[~early], i[~early])),
        shape=(len(users), whole.n_items),
    )
    truth = binary(later - later.multiply(history))
    keep = np.diff(truth.indptr) > 0
    # a history of FIRST items is pooled whole (a mean), so its stored order does not matter
    return Task(train, users[keep], truth[keep], history=history[keep], tags=tags)


def before_cut(
    whole: Interactions, tags: pd.DataFrame | None, share: float
) -> tuple[Interactions, sparse.csr_array, pd.DataFrame | None]:
    """``time_cut``'s training part (with the tags applied before the cut) and later events."""
    past, after = time_cut(whole, share)
    if tags is not None:
        tags = tags[tags["ts"] < cut_at(whole, share)]
    return tagged(past, tags), after, tags


def cold_items(whole: Interactions, tags: pd.DataFrame | None, share: float = 0.2) -> Task:
    """Known users ranking the items first seen after the latest ``share`` of events."""
    past, after, tags = before_cut(whole, tags, share)
    seen = np.bincount(past.event_items, minlength=past.n_items) > 0
    new = np.flatnonzero(~seen)
    truth = after[:, new]
    known = np.bincount(past.event_users, minlength=past.n_users) > 0
    users = np.flatnonzero(known & (np.diff(truth.indptr) > 0))
    full = sparse.csr_array(after.multiply((~seen)[None, :].astype(np.float32)))
    full.eliminate_zeros()
    return Task(past, users, binary(full)[users], candidates=new, tags=tags)


def warm(whole: Interactions, tags: pd.DataFrame | None, share: float = 0.2) -> Task:
    past, after, tags = before_cut(whole, tags, share)
    known = np.bincount(past.event_users, minlength=past.n_users) > 0
    seen = np.bincount(past.event_items, minlength=past.n_items) > 0
    truth = sparse.csr_array(after.multiply(seen[None, :].astype(np.float32)))
    truth.eliminate_zeros()
    users = np.flatnonzero(known & (np.diff(truth.indptr) > 0))
    return Task(past, users, binary(truth)[users], tags=tags)


# ---- main -----------------------------------------------------------------------------------


def run(name: str, seed: int, letters: str) -> None:
    """Print each protocol's tables (those of ``letters``: "abc" all) as soon as it is scored."""
    fmt, folder, _ = DATASETS[name]
    events, items = load(fmt, folder)
    prof = profiles(fmt, folder)
    whole = Interactions.from_events(
        events,
        dict(EventSettings().weights),
        catalog=ItemCatalog.from_items(items),
        profiles=prof,
    )
    tags = tag_events(folder)
    print(f"### {name}\n", flush=True)
    Carve = Callable[[Interactions, pd.DataFrame | None], Task]
    protocols: list[tuple[str, Carve, str, dict[str, Any]]] = []
    if prof:
        protocols.append(
            ("(a) cold users, profile only", lambda d, t: cold_users(d, t, seed, 0), "popular", {})
        )
    protocols += [
        (
            f"(a) cold users, first {FIRST} events",
            lambda d, t: cold_users(d, t, seed, FIRST),
            "popular",
            {"ease": lambda t: fitted("ease", t)},
        ),
        (
            "(b) cold items (first seen after the 0.8 cut)",
            cold_items,
            "content",
            {"content": lambda t: fitted("content", t)},
        ),
        (
            "(c) warm, temporal 0.8",
            warm,
            "ease",
            {"ease": lambda t: fitted("ease", t), "ials": lambda t: fitted("ials", t)},
        ),
    ]
    for title, carve, reference, others in protocols:
        if title[1] not in letters:
            continue
        task = carve(whole, tags)
        val = carve(task.train, task.tags)
        params, grid = choose(val)
        out = [f"**{title}**", "", f"validation ({len(val.users)} users): " + "; ".join(grid), ""]
        models: dict[str, Callable[[Interactions], Any]] = {}
        if reference == "popular" or "cold users" in title:
            models["popular"] = lambda t: fitted("popular", t)
        models.update(others)
        if title.endswith("profile only"):
            models[f"segments (m = {SEGMENT_SHRINKAGE:g})"] = lambda t: _Segments(t, prof)
        models["two_tower"] = lambda t, p=params: fitted("two_tower", t, **BASE, **p)
        out += compare(task, models, reference)
        print("\n".join(out), flush=True)


class _Segments:
    """Segment popularity, scored by ``segment_fallback.scored`` (the code that serves it)."""

    def __init__(self, data: Interactions, prof: dict[str, dict]) -> None:
        self.data, self.prof = data, prof


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--datasets", default="ml-100k,ml-latest-small")
    parser.add_argument("--seed", type=int, default=1, help="which users (a) holds out")
    parser.add_argument("--protocols", default="abc", help="letters of the protocols to run")
    args = parser.parse_args()
    print(calibration_line(), flush=True)
    started = time.perf_counter()
    for name in args.datasets.split(","):
        run(name, args.seed, args.protocols)
    print(f"CPU seconds of fits: { ({k: round(v) for k, v in CPU.items()}) }")
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, torch {torch.__version__}, "
        f"pandas {pd.__version__}; {time.perf_counter() - started:.0f} s wall"
    )


if __name__ == "__main__":
    main()
