"""The shipped default on many sub-samples shaped like #15's hidden data sets, run as a user runs
it and scored by code outside recsmith's evaluation package.

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/shape_sweep.py
    # bigger (BENCHMARKS §59, ~1 h at load 15-20):
    #   --shapes market,sparse,dense,long,short --seeds 0,1

The hidden checks of #15 are a sparse marketplace ratings set (~10k ratings, 1.3k users, 900 items,
global time cut at the 0.8 quantile) and long review sequences (each user's last item against the
whole catalogue). No such set is in ../shared, so this draws sub-samples of the shared ones at
those shapes and at sparser / denser / shorter ones (``SHAPES``), several seeds each, and for each:

1. splits it with this file's own protocol code (``split``): a global time cut at the 0.8
   quantile of event times (test users: known before it, with items new to them after it), or
   each user's last event held out (users with at least two events whose last item is new to
   them);
2. runs the shipped default exactly as a user would, in separate processes: ``recsmith import``
   of the train part into a fresh SQLite store, ``recsmith train --store … --pipeline
   examples/pipeline.toml``, ``recsmith recommend --model-dir … --users … --k 10 --out RECS.csv``;
   and the same with ``train --model popular``;
3. fits tuned peers on the same train part (``implicit``'s ALS and cosine item-kNN, and EASE —
   recsmith's closed form, the algorithm RecTools' EASE computes — each tuned on a validation
   split carved from the train part by the same protocol) and recsmith's own single sources at
   their defaults (``ModelBundle``, the serving path);
4. scores every list with ``ndcg_at_10`` below (binary relevance, items the user had in the train
   part dropped from the list, the list not refilled), and gives paired bootstrap intervals
   (over test users) of the pipeline's ratio to ``popular`` and to the best tuned peer.

The sweep ends with the distribution of both ratios and the worst cases. The default (the
marketplace shape, one seed, three sources) is three samples: 72 s on two cores at load 1.7,
several minutes at load 15-20 (mostly the pipeline's calibration); ``--seeds`` and ``--shapes``
make it bigger. ``--keep DIR`` leaves each sample's files and model directories.

``--save DIR`` writes each sample's per-user NDCG@10 arrays, users and run facts (``save``), so a
later run of another tree pairs with them user for user; ``--pipeline-only`` trains and scores
only the default pipeline (no ``popular``, no peers: the one part a library change moves), and
``choice_compare.py`` pairs two saved directories (a branch's pipeline-only run against main's
full one, or main's pipeline against its own best tuned peer) with bootstrap intervals:

    … shape_sweep.py --shapes hidden-long --seeds 3 --save /tmp/hl/main        # main's tree
    … shape_sweep.py --shapes hidden-long --seeds 3 --save /tmp/hl/branch --pipeline-only
    … choice_compare.py /tmp/hl/main /tmp/hl/branch hidden-long-simulated-reviews-3
    … choice_compare.py /tmp/hl/main /tmp/hl/main hidden-long-simulated-reviews-3 \\
        --base-list best-peer                  # main's pipeline against its best tuned peer

The pipeline's lists are the same on two runs of one tree only where its calibration's CPU
budget stopped the grid at the same step (the budget counts CPU seconds, which move with the
load): read the calibration line each run saved before reading a difference as the change's.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from calibration import calibration_line
from pipeline_vs_models import load_named
from scipy import sparse

from recsmith.bundle import ModelBundle
from recsmith.config import EventSettings
from recsmith.features.interactions import Interactions
from recsmith.models.registry import create
from recsmith.pipeline.artifact import train_pipeline
from recsmith.pipeline.config import default_pipeline_config
from recsmith.simulate import simulate

K = 10
REPO = Path(__file__).resolve().parents[1]
RESAMPLES = 1000


@dataclass(frozen=True)
class Shape:
    """What a sub-sample looks like: at most ``users`` users and ``items`` items, about
    ``events`` events (None: every event the users and items keep), each user's latest
    ``per_user`` events at most (None: all), and the protocol it is scored by."""

    users: int
    items: int | None
    events: int | None
    protocol: str  # "temporal" | "last"
    per_user: int | None = None
    datasets: tuple[str, ...] = ("ml-100k", "ml-latest-small")


SHAPES = {
    # the hidden marketplace set: ~10k ratings, 1.3k users, 900 items, time cut at 0.8. Its 448
    # test users (34 % of its users) return after the cut; MovieLens users rate in one burst:
    # the whole ml-100k has 109 of 943 users on both sides of its 0.8 cut (192 of the 301 after
    # it are new), ml-latest-small 28 of 610, and thinning to 10k / 5k events keeps 58-72 / 38-51
    # (BENCHMARKS §116, `shape_pool.py returning`). The sampler is not what is unfaithful (no
    # draw of these sets holds more returning users than the whole set), the data set is: every
    # ml-100k seed tests the same ~110 people, so pooling seeds cannot read finer than they do;
    # ``simulated`` is the source whose users return in the hidden set's numbers
    "market": Shape(1300, 900, 10_000, "temporal",
                    datasets=("ml-100k", "ml-latest-small", "simulated")),
    "sparse": Shape(1300, 900, 5_000, "temporal"),
    "dense": Shape(1300, 900, 30_000, "temporal", datasets=("ml-100k",)),  # ml-latest-small's
    # 900 items hold fewer than 30k events: its "dense" sample would be its "market" one
    # long sequences, each user's last item against the whole catalogue
    "long": Shape(600, None, None, "last"),
    # review-like: each user's latest 10 events (500 users: fewer than every set holds, so a seed
    # draws other users)
    "short": Shape(500, None, None, "last", per_user=10,
                   datasets=("ml-100k", "ml-latest-small", "diginetica-sample")),
    # the hidden long set at its size (~22k users, 12k items, ~270k events, >= 5 a user: only
    # the simulator holds that many), and the shared sets whole (their largest leave-last-out
    # samples; one seed reads them all, the draw keeps everyone)
    "hidden-long": Shape(10**9, None, None, "last", datasets=("simulated-reviews",)),
    # the same reviews cut in time at 0.8: a large set judged on a time cut, where a choice that
    # trades the time cut for each user's next item pays what it trades (BENCHMARKS §188)
    "hidden-long-cut": Shape(10**9, None, None, "temporal", datasets=("simulated-reviews",)),
    "whole": Shape(10**9, None, None, "last",
                   datasets=("ml-100k", "ml-latest-small", "diginetica-sample")),
}  # fmt: skip
DEFAULT_SHAPES = "market"


# ---- data ---------------------------------------------------------------------------------------


#: The simulator's knobs per simulated source. ``simulated``: the marketplace set's 1.3k users
#: and 900 items. ``simulated-reviews``: the hidden long set's size once ``reviews`` keeps one
#: event a (user, item) and users with at least ``MIN_REVIEWS`` (seed 0: 21,054 users, 12,050
#: items, 269,040 events, 12.8 a user: review sequences are long).
SIMULATED: dict[str, dict[str, float]] = {
    "simulated": {"n_users": 1300, "n_items": 900},
    "simulated-reviews": {
        "n_users": 24_000, "n_items": 12_400, "sessions_per_user": 3.0, "events_per_session": 5.0,
    },
}  # fmt: skip
MIN_REVIEWS = 5


def reviews(events: pd.DataFrame, least: int = MIN_REVIEWS) -> pd.DataFrame:
    """A review log from a shop log: each user's first event on an item only (a review is
    written once; the later views, carts and purchases of it dropped), then only users with at
    least ``least`` items, as a review set keeps users with long sequences."""
    first = events.sort_values("ts", kind="stable").drop_duplicates(["user_id", "item_id"])
    size = first.groupby("user_id")["user_id"].transform("size")
    return first[size >= least]


def events_of(name: str, seed: int) -> pd.DataFrame:
    """(user, item, type, value, ts) of a shared data set (anonymous sessions are users), or of
    a ``SIMULATED`` source: recsmith's shop simulator (seeded). ``simulated`` is the one source
    here whose users come back after a time cut in numbers (448 test users in the hidden set;
    20-70 in a MovieLens sample of that size, drawn from the 109 (ml-100k) or 28
    (ml-latest-small) users of the whole set who return after its cut); ``simulated-reviews``
    is the one at the hidden long set's size (``reviews``)."""
    if name in SIMULATED:
        events = simulate(seed=seed, **SIMULATED[name]).events  # type: ignore[arg-type]
        ts = pd.to_datetime(events["timestamp"]).dt.as_unit("us").astype("int64")
        events = events.assign(ts=ts)
        if name == "simulated-reviews":
            events = reviews(events)
    else:
        events, _, _ = load_named(name)
    user = events["user_id"].astype(object)
    anonymous = user.isna()
    user[anonymous] = "s" + events.loc[anonymous, "session_id"].astype(str)
    out = pd.DataFrame(
        {
            "user_id": user.astype(str),
            "item_id": events["item_id"].astype(str),
            "event_type": events["event_type"].astype(str),
            "value": events["value"],
            "ts": events["ts"].astype(np.int64),
            "session_id": None,
        }
    )
    return out.reset_index(drop=True)


def sample(events: pd.DataFrame, shape: Shape, seed: int) -> pd.DataFrame:
    """A seeded sub-sample at ``shape``: users, then items, drawn uniformly; each user's latest
    ``per_user`` events kept in order; then events drawn uniformly down to ``shape.events``."""
    rng = np.random.default_rng(seed)
    users = events["user_id"].unique()
    if len(users) > shape.users:
        users = rng.choice(users, shape.users, replace=False)
    out = events[events["user_id"].isin(users)]
    if shape.items is not None:
        items = out["item_id"].unique()
        if len(items) > shape.items:
            out = out[out["item_id"].isin(rng.choice(items, shape.items, replace=False))]
    if shape.per_user is not None:
        order = out.sort_values(["user_id", "ts"], kind="stable")
        rank = order.groupby("user_id").cumcount(ascending=False)
        out = order[rank < shape.per_user]
    if shape.events is not None and len(out) > shape.events:
        out = out.iloc[np.sort(rng.choice(len(out), shape.events, replace=False))]
    return out.sort_values("ts", kind="stable").reset_index(drop=True)


@dataclass(frozen=True)
class Split:
    train: pd.DataFrame
    truth: dict[str, set[str]]  # test user -> held-out items new to them

    @property
    def users(self) -> list[str]:
        return sorted(self.truth)


def split(events: pd.DataFrame, protocol: str) -> Split:
    """This file's own protocol code (no recsmith split): a global time cut at the 0.8 quantile,
    or each user's last event (ties: the later row) held out."""
    if protocol == "temporal":
        before = events["ts"] < np.quantile(events["ts"], 0.8)
        train, test = events[before], events[~before]
    else:
        order = events.sort_values(["user_id", "ts"], kind="stable")
        last = ~order["user_id"].duplicated(keep="last")
        repeat = order.groupby("user_id")["user_id"].transform("size") > 1
        held = last & repeat
        train, test = order[~held], order[held]
    seen = train.groupby("user_id")["item_id"].agg(set).to_dict()
    truth: dict[str, set[str]] = {}
    for user, item in zip(test["user_id"], test["item_id"], strict=True):
        if user in seen and item not in seen[user]:
            truth.setdefault(user, set()).add(item)
    return Split(train.reset_index(drop=True), truth)


# ---- scoring ------------------------------------------------------------------------------------


def ndcg_at_10(lists: dict[str, list[str]], s: Split) -> np.ndarray:
    """Per test user (``s.users`` order) NDCG@10, binary relevance; a train item in a list is
    dropped (the list is not refilled); a user without a list scores 0."""
    seen = s.train.groupby("user_id")["item_id"].agg(set).to_dict()
    discount = 1.0 / np.log2(np.arange(2, K + 2))
    out = np.zeros(len(s.users))
    for n, user in enumerate(s.users):
        ranked = [i for i in lists.get(user, []) if i not in seen.get(user, ())][:K]
        truth = s.truth[user]
        dcg = sum(discount[r] for r, item in enumerate(ranked) if item in truth)
        out[n] = dcg / discount[: min(len(truth), K)].sum()
    return out


def ratio_interval(
    a: np.ndarray, b: np.ndarray, people: np.ndarray | None = None, seed: int = 0
) -> tuple[float, float, float]:
    """mean(a) / mean(b) and its 95 % paired bootstrap interval over people (resampled together);
    nan where ``b`` scores nothing. ``people``: whose score each row is (None: each row its own
    person): a person's rows are resampled as one unit, as samples of one data set share users
    (a MovieLens user is in every ``long`` sample, with the same held-out item), and rows of one
    person are not independent draws."""
    if b.mean() <= 0:
        return float("nan"), float("nan"), float("nan")
    if people is not None:
        _, person = np.unique(people, return_inverse=True)
        a, b = np.bincount(person, a), np.bincount(person, b)
    rows = np.random.default_rng(seed).integers(0, len(a), (RESAMPLES, len(a)))
    num, den = a[rows].sum(axis=1), b[rows].sum(axis=1)
    ratios = np.divide(num, den, out=np.full(RESAMPLES, np.nan), where=den > 0)
    low, high = np.nanpercentile(ratios, [2.5, 97.5])
    return float(a.mean() / b.mean()), float(low), float(high)


# ---- recsmith as a user runs it -----------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    """What one ``recsmith`` process cost: wall seconds, CPU seconds (user + system, its
    children's too), and its peak resident memory in MiB (the kernel's ``ru_maxrss``)."""

    wall: float
    cpu: float
    peak_mib: float

    def __str__(self) -> str:
        return f"wall {self.wall:.0f} s, CPU {self.cpu:.0f} s, peak RSS {self.peak_mib:,.0f} MiB"


def cli(*args: str) -> tuple[str, Usage]:
    """``recsmith ARGS`` in its own process; its stdout and what it cost (raises with stderr on
    failure). The child is reaped with ``os.wait4`` so its own resource usage is read, not the
    sum over every child this script has had."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        child = subprocess.Popen(
            [sys.executable, "-m", "recsmith", *args],
            stdout=out,
            stderr=err,
            text=True,
            env={**os.environ, "COLUMNS": "100000"},  # one line per message
        )
        _, status, used = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if child.returncode != 0:
        raise RuntimeError(f"recsmith {' '.join(args)}: exit {child.returncode}\n{stderr}")
    return stdout + stderr, Usage(wall, used.ru_utime + used.ru_stime, used.ru_maxrss / 1024)


def stops(report: dict, where: str = "") -> Iterator[str]:
    """Each ``stopped`` a calibration report holds, anywhere in it, as ``PATH: why`` (the grid's
    budget stops: ``grid.ease.lowpass: before 1.0: half the 600 s CPU budget``): what the
    one-line summary does not say, and what moves with the load (the budget counts CPU s)."""
    for key, value in report.items():
        if key == "stopped":
            yield f"{where or 'calibration'}: {value}"
        elif isinstance(value, dict):
            yield from stops(value, f"{where}.{key}" if where else key)


def shipped(
    s: Split, work: Path, pipeline_only: bool = False
) -> tuple[dict[str, dict[str, list[str]]], str, Usage, dict]:
    """Lists of the default pipeline and of ``popular`` (not with ``pipeline_only``) for the
    test users (import, train, recommend through the CLI), the calibration line ``train``
    printed, what its ``train`` cost, and its manifest's calibration report."""
    csv = work / "train.csv"
    frame = s.train.assign(timestamp=pd.to_datetime(s.train["ts"], unit="us", utc=True))
    frame[["user_id", "item_id", "event_type", "value", "timestamp"]].to_csv(csv, index=False)
    (work / "users.txt").write_text("\n".join(s.users) + "\n")
    store = f"sqlite:///{work / 'store.sqlite'}"
    cli("import", str(csv), "--store", store)
    lists: dict[str, dict[str, list[str]]] = {}
    said, cost, report = "", Usage(0.0, 0.0, 0.0), {}
    models = [
        ("pipeline", ["--pipeline", str(REPO / "examples" / "pipeline.toml")]),
        ("popular", ["--model", "popular"]),
    ]
    for name, how in models[:1] if pipeline_only else models:
        out, used = cli("train", "--store", store, *how, "--out", str(work / name))
        if name == "pipeline":
            cost = used
            said = next((ln for ln in out.splitlines() if ln.startswith("calibration")), "")
            manifest = json.loads((work / name / "manifest.json").read_text())
            report = manifest.get("calibration", {})
        recs = work / f"{name}.csv"
        cli("recommend", "--model-dir", str(work / name), "--users", str(work / "users.txt"),
            "--k", str(K), "--out", str(recs))  # fmt: skip
        table = pd.read_csv(recs, dtype={"user_id": str, "item_id": str}).sort_values(
            ["user_id", "rank"]
        )
        lists[name] = table.groupby("user_id")["item_id"].agg(list).to_dict()
    return lists, said, cost, report


# ---- peers --------------------------------------------------------------------------------------


def _matrix(s: Split) -> Interactions:
    return Interactions.from_events(s.train, dict(EventSettings().weights))


def _named(data: Interactions, users: list[str], ids: np.ndarray) -> dict[str, list[str]]:
    ids = np.asarray(ids, dtype=np.int64)
    return {
        u: list(data.items.to_external(row[(row >= 0) & (row < data.n_items)]))
        for u, row in zip(users, ids, strict=True)
    }


def recsmith_lists(model: str, params: dict) -> Callable[[Split], dict[str, list[str]]]:
    def lists(s: Split) -> dict[str, list[str]]:
        data = _matrix(s)
        bundle = ModelBundle.train(data, create(model, **params))
        top, _ = bundle.top_k(s.users, K)
        return _named(data, s.users, top.ids)

    return lists


def implicit_lists(family: str, params: dict) -> Callable[[Split], dict[str, list[str]]]:
    def lists(s: Split) -> dict[str, list[str]]:
        from implicit.cpu.als import AlternatingLeastSquares
        from implicit.nearest_neighbours import CosineRecommender

        data = _matrix(s)
        matrix = sparse.csr_matrix(data.matrix, dtype=np.float32)
        if family == "als":
            model = AlternatingLeastSquares(random_state=42, num_threads=1, **params)
        else:
            model = CosineRecommender(**params)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Method expects CSR input")
            model.fit(matrix, show_progress=False)
        known = [u for u in s.users if data.users.to_index([u])[0] >= 0]
        rows = data.users.to_index(known)
        ids, _ = model.recommend(rows, matrix[rows], N=K, filter_already_liked_items=True)
        return _named(data, known, ids)

    return lists


#: Each peer's grid, tuned on a validation split carved from the train part by the test's
#: protocol (the first entry is the library's defaults).
PEERS: dict[str, tuple[Callable[[str, dict], Callable], str, list[dict]]] = {
    "implicit ALS": (implicit_lists, "als", [
        {}, {"alpha": 10.0}, {"factors": 64, "regularization": 0.05, "alpha": 2.0},
        {"regularization": 1.0}, {"factors": 128, "alpha": 10.0, "regularization": 1.0},
        {"alpha": 40.0, "regularization": 1.0}, {"factors": 32, "alpha": 10.0},
    ]),
    "implicit item-kNN": (implicit_lists, "cosine", [{}, {"K": 50}, {"K": 200}, {"K": 10}]),
    "EASE": (recsmith_lists, "ease", [
        {}, {"regularization": 50.0}, {"regularization": 1000.0}, {"regularization": 100.0},
        {"regularization": 2500.0}, {"regularization": 10.0},
    ]),
}  # fmt: skip
OWN = ["ease", "ials", "itemknn"]  # recsmith single sources of the default pipeline, defaults


def configured_fusion(s: Split) -> dict[str, list[str]]:
    """The default file's fused order as written — calibration and ranker off — trained in
    process: what calibration chose against (``--configured``; a diagnosis, not what ships)."""
    config = default_pipeline_config()
    off = {"enabled": False}
    config = config.model_copy(
        update={
            "calibration": config.calibration.model_copy(update=off),
            "ranking": config.ranking.model_copy(update=off),
        }
    )
    events = s.train.assign(event_id=None, context=None)
    pipeline = train_pipeline(config, events, dict(EventSettings().weights))
    top, _, _ = pipeline.top_k(np.array(s.users, dtype=object), K)
    return {
        u: list(pipeline.bundle.items.to_external(row[row >= 0]))
        for u, row in zip(s.users, top.ids, strict=True)
    }


def tuned(s: Split, protocol: str) -> dict[str, tuple[np.ndarray, str]]:
    """Each peer's test NDCG@10 per user at its grid's best validation configuration."""
    inner = split(s.train, protocol)
    out = {}
    for peer, (make, family, grid) in PEERS.items():
        val = [ndcg_at_10(make(family, p)(inner), inner).mean() for p in grid]
        best = grid[int(np.argmax(val))]
        out[peer] = (ndcg_at_10(make(family, best)(s), s), json.dumps(best))
    return out


# ---- the sweep ----------------------------------------------------------------------------------


@dataclass
class Row:
    shape: str
    dataset: str
    seed: int
    stats: str
    scores: dict[str, np.ndarray]
    best_peer: str
    said: str
    train: Usage  # the pipeline's ``recsmith train``
    people: np.ndarray  # whose score each row of ``scores`` is (``people_of``)
    users: tuple[str, ...] = ()  # the test users in ``scores``' order (``Split.users``)
    calibration: dict = field(default_factory=dict)  # the pipeline manifest's ``calibration``

    def ratio(self, other: str) -> tuple[float, float, float]:
        return ratio_interval(self.scores["pipeline"], self.scores[other])


def run_one(
    shape_name: str,
    dataset: str,
    seed: int,
    keep: Path | None,
    configured: bool = False,
    pipeline_only: bool = False,
) -> Row:
    shape = SHAPES[shape_name]
    events = sample(events_of(dataset, seed), shape, seed)
    s = split(events, shape.protocol)
    stats = (
        f"{len(events):,} ev, {events.user_id.nunique():,} u, {events.item_id.nunique():,} i, "
        f"{len(s.users):,} test u"
    )
    with tempfile.TemporaryDirectory(prefix="shape-sweep-") as tmp:
        work = keep / f"{shape_name}-{dataset}-{seed}" if keep else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        lists, said, cost, calibrated = shipped(s, work, pipeline_only)
    scores = {name: ndcg_at_10(ls, s) for name, ls in lists.items()}
    people = people_of(dataset, seed, s.users)
    if pipeline_only:
        return Row(
            shape_name, dataset, seed, stats, scores, "", said, cost, people, tuple(s.users),
            calibrated,
        )  # fmt: skip
    if configured:
        scores["configured fusion (calibration off)"] = ndcg_at_10(configured_fusion(s), s)
    peers = tuned(s, shape.protocol)
    for peer, (per_user, params) in peers.items():
        scores[f"{peer} {params}"] = per_user
    for model in OWN:
        scores[f"own {model}"] = ndcg_at_10(recsmith_lists(model, {})(s), s)
    best = max((n for n in scores if n.split(" {")[0] in PEERS), key=lambda n: scores[n].mean())
    return Row(
        shape_name, dataset, seed, stats, scores, best, said, cost, people, tuple(s.users),
        calibrated,
    )  # fmt: skip


def label(name: str) -> str:
    """A list's file label: its name without a peer's settings, runs of other than letters and
    digits as one dash (``implicit ALS {"alpha": 10.0}`` -> ``implicit-ALS``)."""
    return re.sub(r"[^A-Za-z0-9]+", "-", name.split(" {")[0]).strip("-")


def commit() -> str | None:
    """The commit of this file's tree, ``+dirty`` where tracked files differ from it; None
    outside a git checkout (a ``git archive`` copy: its directory, saved beside, names it)."""
    git = ["git", "-C", str(REPO)]
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0:
        return None
    dirty = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()  # fmt: skip
    return head.stdout.strip() + ("+dirty" if dirty else "")


def save(row: Row, directory: Path) -> Path:
    """``row``'s per-user scores under ``directory`` as ``SHAPE-DATASET-SEED.npy`` (the
    pipeline's: ``choice_ab.py``'s format, so ``choice_compare.py`` pairs either) and
    ``SHAPE-DATASET-SEED~LABEL.npy`` for every other list (``label``; the best tuned peer's also
    as ``~best-peer``), and ``SHAPE-DATASET-SEED.json``: the users in the arrays' order (a
    comparison pairs only runs that scored the same users), each list's full name and file, the
    calibration line, the train's cost and the tree. Returns the JSON's path."""
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"{row.shape}-{row.dataset}-{row.seed}"
    files = {}
    for name, per_user in row.scores.items():
        files[name] = f"{stem}.npy" if name == "pipeline" else f"{stem}~{label(name)}.npy"
        np.save(directory / files[name], per_user)
    if row.best_peer:
        np.save(directory / f"{stem}~best-peer.npy", row.scores[row.best_peer])
    facts = {
        "users": list(row.users),
        "lists": files,
        "best_peer": row.best_peer,
        "stats": row.stats,
        "calibration": row.said,
        "train": {"wall_s": row.train.wall, "cpu_s": row.train.cpu, "peak_mib": row.train.peak_mib},
        "stopped": list(stops(row.calibration)),
        "ranker": row.calibration.get("ranker"),
        "calibration_report": row.calibration,
        "tree": str(REPO),
        "commit": commit(),
    }
    path = directory / f"{stem}.json"
    path.write_text(json.dumps(facts, indent=1) + "\n")
    return path


def people_of(dataset: str, seed: int, users: list[str]) -> np.ndarray:
    """Who each test user is across samples: a shared data set's user id names one person in
    every seed's sample; ``simulated`` draws a new world per seed, so its ids are new people
    (the seed is part of the name)."""
    if dataset in SIMULATED:
        return np.array([f"{seed}/{u}" for u in users], dtype=object)
    return np.array(users, dtype=object)


def report(row: Row) -> None:
    print(f"\n#### {row.shape} / {row.dataset} / seed {row.seed}: {row.stats}")
    print(f"  {row.said} (train: {row.train})")
    if row.calibration:
        print(f"  ranker: {row.calibration.get('ranker')}")
        print(f"  stopped: {'; '.join(stops(row.calibration)) or 'nowhere'}")
    print("| lists | NDCG@10 | pipeline / this [95 % CI] |")
    print("|---|---:|---:|")
    for name, per_user in row.scores.items():
        r, lo, hi = row.ratio(name)
        tag = " (best tuned peer)" if name == row.best_peer else ""
        cell = "" if name == "pipeline" else f"{r:.2f} [{lo:.2f}, {hi:.2f}]"
        print(f"| {name}{tag} | {per_user.mean():.4f} | {cell} |", flush=True)


def summary(rows: list[Row]) -> None:
    print("\n### Summary")
    print("| ratio | n | min | 25 % | median | 75 % | max | below 1 beyond noise |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, other in [("pipeline / popular", "popular"), ("pipeline / best tuned peer", None)]:
        got = [r.ratio(other or r.best_peer) for r in rows]
        mids = np.array([g[0] for g in got if np.isfinite(g[0])])
        below = sum(g[2] < 1 for g in got)
        q = np.percentile(mids, [0, 25, 50, 75, 100]) if len(mids) else [np.nan] * 5
        cells = " | ".join(f"{x:.2f}" for x in q)
        print(f"| {label} | {len(mids)} | {cells} | {below} |")
    print("\nPooled over each shape's samples (every seed's users together, a user in several")
    print("samples one unit of the bootstrap; each sample's own best tuned peer, chosen on test,")
    print("so the peer side is the best of three on every sample):")
    print("| shape / data set | samples | distinct test users | pipeline / popular", end="")
    print(" | pipeline / best peer |")
    print("|---|---:|---:|---:|---:|")
    for (shape, dataset), (samples, users, to_popular, to_peer) in pooled(rows).items():
        cells = " | ".join(f"{r:.2f} [{lo:.2f}, {hi:.2f}]" for r, lo, hi in (to_popular, to_peer))
        print(f"| {shape} / {dataset} | {samples} | {users:,} | {cells} |")
    print("\nWorst five by pipeline / popular:")
    for r in sorted(rows, key=lambda r: np.nan_to_num(r.ratio("popular")[0], nan=9))[:5]:
        rp, rb = r.ratio("popular"), r.ratio(r.best_peer)
        own = max((n for n in r.scores if n.startswith("own ")), key=lambda n: r.scores[n].mean())
        print(
            f"- {r.shape}/{r.dataset}/seed {r.seed} ({r.stats}): pipeline "
            f"{r.scores['pipeline'].mean():.4f}, popular {r.scores['popular'].mean():.4f} "
            f"({rp[0]:.2f} [{rp[1]:.2f}, {rp[2]:.2f}]), best peer {r.best_peer} "
            f"({rb[0]:.2f} [{rb[1]:.2f}, {rb[2]:.2f}]), best own single {own} "
            f"{r.scores[own].mean():.4f}; {r.said}"
        )


Interval = tuple[float, float, float]


def pooled(rows: list[Row]) -> dict[tuple[str, str], tuple[int, int, Interval, Interval]]:
    """Per (shape, data set): its samples, distinct test users (a person in several samples
    counts once), and the pipeline's ratio to ``popular`` and to each sample's best tuned peer
    with every sample's users concatenated (one paired bootstrap over people, each person's rows
    together: ``ratio_interval``): a 50-user sample's interval spans 0.3-3x, so whether a shape
    meets a 1.05x bar is read on all its users (the ratio of summed scores, so a sample weighs
    by its users)."""
    groups: dict[tuple[str, str], list[Row]] = {}
    for r in rows:
        groups.setdefault((r.shape, r.dataset), []).append(r)
    out = {}
    for key, group in groups.items():
        mine = np.concatenate([r.scores["pipeline"] for r in group])
        popular = np.concatenate([r.scores["popular"] for r in group])
        peer = np.concatenate([r.scores[r.best_peer] for r in group])
        people = np.concatenate([r.people for r in group])
        out[key] = (
            len(group),
            len(set(people)),
            ratio_interval(mine, popular, people),
            ratio_interval(mine, peer, people),
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default=DEFAULT_SHAPES, help=f"of {', '.join(SHAPES)}")
    parser.add_argument("--datasets", default="", help="only these (default: each shape's)")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--keep", type=Path, default=None, help="leave each sample's files here")
    parser.add_argument(
        "--save", type=Path, default=None, help="save each sample's per-user scores here (save)"
    )
    parser.add_argument(
        "--pipeline-only",
        action="store_true",
        help="train and score only the default pipeline (to pair with a saved full run)",
    )
    parser.add_argument(
        "--configured",
        action="store_true",
        help="also score the file's fused order with calibration and ranker off",
    )
    args = parser.parse_args()
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    print(calibration_line(), flush=True)
    started = time.perf_counter()
    rows = []
    only = set(filter(None, args.datasets.split(",")))
    for shape in args.shapes.split(","):
        for dataset in SHAPES[shape].datasets:
            if only and dataset not in only:
                continue
            for seed in map(int, args.seeds.split(",")):
                rows.append(
                    run_one(shape, dataset, seed, args.keep, args.configured, args.pipeline_only)
                )
                report(rows[-1])
                if args.save:
                    print(f"  saved {save(rows[-1], args.save)}", flush=True)
    if not args.pipeline_only:
        summary(rows)
    print(f"\nTotal {time.perf_counter() - started:.0f} s.")


if __name__ == "__main__":
    main()
