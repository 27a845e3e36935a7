#!/usr/bin/env python
"""Accuracy and fit time of recsmith's models against the ``implicit`` library called directly.

Protocol (one dataset, one split):

1. MovieLens is read with recsmith's own importer (format ``movielens``) and validated with
   ``validate_events(chunk, EventSettings())``; rating events weigh their star value
   (``events.weights.rating = "value"``), so ALS confidence is ``1 + alpha * stars``.
2. The split is applied once. The train part becomes ``Interactions.from_events(train, weights)``;
   ``ground_truth`` (recsmith's) gives the held-out items of the test users known in train.
3. recsmith's ``popular``, ``itemknn`` and ``ials`` run through ``recsmith.evaluation.runner``
   (``evaluate_model``: ``ModelBundle.train`` + ``top_k``, i.e. the serving path).
4. ``implicit`` runs directly on the identical matrix (``csr_matrix(data.matrix)``):
   ``AlternatingLeastSquares`` with recsmith's ials hyperparameters, and ``CosineRecommender`` as
   an item-kNN reference; its lists are scored by the same ``compute_metrics`` against the same
   truth.
5. A small hyperparameter check: a validation split is carved out of TRAIN by the same rule (no
   test data is looked at), the best setting by ndcg@k is picked there, and its test metrics are
   reported for recsmith and for implicit direct with the same parameters.

BLAS is held to one thread for the whole run (threadpoolctl), so fit times compare fairly.
implicit's own OpenMP threads (``num_threads``) are set the same on both sides: ALS is timed at
each of ``--threads`` (default 0 = all cores, recsmith's default, and 1), the median of
``--repeats`` interleaved runs, wall clock and process CPU time.

Usage (from the repository root)::

    .venv/bin/python benchmarks/accuracy_vs_implicit.py --dataset all \
        --split temporal:0.8,temporal:0.9 --out benchmarks/results/accuracy_vs_implicit.md
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from importlib import metadata
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from calibration import calibration_line
from scipy import sparse, stats
from threadpoolctl import threadpool_info, threadpool_limits

from recsmith.config import EventSettings
from recsmith.evaluation.metrics import catalog_coverage, compute_metrics
from recsmith.evaluation.runner import GroundTruth, ModelResult, evaluate_model, ground_truth
from recsmith.evaluation.split import Split, parse_split
from recsmith.events.importers.base import read_source
from recsmith.events.validate import validate_events
from recsmith.features.interactions import Interactions
from recsmith.models.als import ALSConfig, ImplicitALS

DATA_ROOT = Path(os.environ.get("RECSMITH_DATASETS", "/work/shared/datasets"))
DATASETS = {"ml-100k": "movielens-100k", "ml-latest-small": "movielens-latest-small"}
METRICS = ("precision", "recall", "ndcg", "map", "hit_rate")
ALS_DEFAULTS = {k: v for k, v in ALSConfig().model_dump().items() if k != "num_threads"}
ALS_GRID = {
    "factors": (32, 64, 128),
    "regularization": (0.01, 0.05, 0.1),
    "alpha": (1.0, 2.0, 5.0, 10.0),
    "iterations": (15,),
}
KNN_GRID = {"neighbors": (50, 100, 200), "shrinkage": (0.0, 10.0, 50.0)}
#: "clearly beats popular": relative ndcg lift at least this, and a paired test below ALPHA_TEST.
MIN_LIFT = 0.10
ALPHA_TEST = 0.05
#: recsmith ials vs implicit direct: largest relative ndcg gap still counted as "in line".
MAX_NDCG_GAP = 0.01
MAX_FIT_RATIO = 1.10
BUNDLE = "recsmith `ModelBundle.train` (= the runner's fit_seconds)"
OURS_FIT = "recsmith `ImplicitALS.fit` alone"
IMPLICIT = "implicit `AlternatingLeastSquares(...)` + `.fit`"

_T0 = time.perf_counter()


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - _T0:7.1f}s] {msg}", file=sys.stderr, flush=True)


# ---- data -----------------------------------------------------------------------------------


def load_events(dataset: str) -> tuple[pd.DataFrame, dict[str, int]]:
    """The dataset as a canonical event frame, through recsmith's importer and validation."""
    path = DATA_ROOT / DATASETS[dataset]
    settings = EventSettings()
    frames, rejected, read = [], 0, 0
    for chunk in read_source("movielens", path).events:
        valid, bad = validate_events(chunk.rows, settings, offset=chunk.offset)
        frames.append(valid)
        rejected += len(bad) + len(chunk.rejections)
        read += len(chunk)
    events = pd.concat(frames, ignore_index=True)
    return events, {"read": read, "rejected": rejected, "events": len(events)}


@dataclass
class Prepared:
    """One split of one dataset: the train matrix, the truth, and counts for the report."""

    split: Split
    data: Interactions
    truth: GroundTruth
    matrix: sparse.csr_matrix  # data.matrix as implicit wants it
    user_index: np.ndarray  # internal indices of truth.user_ids
    stats: dict[str, Any]


def prepare(events: pd.DataFrame, split: Split, weights: dict[str, Any]) -> Prepared:
    data = Interactions.from_events(split.train, weights)
    truth = ground_truth(data, split.test, weights)
    test_users = pd.unique(split.test["user_id"].to_numpy(dtype=object))
    known = data.users.to_index(test_users) >= 0
    t0, t1 = split.train["ts"].max(), split.test["ts"].min()
    stats = {
        "train_events": len(split.train),
        "test_events": len(split.test),
        "train_users": data.n_users,
        "train_items": data.n_items,
        "test_users": len(test_users),
        "test_users_cold": int((~known).sum()),
        "evaluated_users": len(truth.user_ids),
        "truth_items": int(truth.matrix.nnz),
        "cut": pd.Timestamp(int(t1), unit="us").strftime("%Y-%m-%d %H:%M"),
        "train_end": pd.Timestamp(int(t0), unit="us").strftime("%Y-%m-%d %H:%M"),
    }
    return Prepared(
        split=split,
        data=data,
        truth=truth,
        matrix=sparse.csr_matrix(data.matrix),
        user_index=data.users.to_index(truth.user_ids).astype(np.int64),
        stats=stats,
    )


# ---- one row of the table -------------------------------------------------------------------


@dataclass
class Row:
    model: str
    source: str  # recsmith | implicit
    params: dict[str, Any]
    metrics: dict[str, float]
    per_user_ndcg: np.ndarray
    coverage: float
    fit_seconds: float
    fit_runs: list[float] = field(default_factory=list)
    recs: np.ndarray | None = None
    note: str = ""


def _short(params: dict[str, Any]) -> str:
    keep = {k: v for k, v in params.items() if k not in ("num_threads", "random_state", "binary")}
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in keep.items())


def from_result(result: ModelResult, recs: np.ndarray | None = None) -> Row:
    return Row(
        model=result.model,
        source="recsmith",
        params=result.params,
        metrics={m: result.metrics[m] for m in METRICS},
        per_user_ndcg=result.per_user["ndcg"],
        coverage=result.coverage,
        fit_seconds=result.fit_seconds,
        fit_runs=[result.fit_seconds],
        recs=recs,
    )


def score_lists(
    name: str,
    params: dict[str, Any],
    ids: np.ndarray,
    p: Prepared,
    k: int,
    fit_runs: list[float],
    note: str = "",
) -> Row:
    """implicit's lists scored exactly as the runner scores recsmith's."""
    ids = np.asarray(ids, dtype=np.int64)
    ids[(ids < 0) | (ids >= p.data.n_items)] = -1
    result = compute_metrics(ids, p.truth.matrix, p.truth.matrix.shape[1], METRICS, k)
    return Row(
        model=name,
        source="implicit",
        params=params,
        metrics=result.means,
        per_user_ndcg=result.per_user["ndcg"],
        coverage=catalog_coverage(ids, p.data.n_items),
        fit_seconds=statistics.median(fit_runs),
        fit_runs=fit_runs,
        recs=ids,
        note=note,
    )


def recsmith_lists(p: Prepared, model: str, params: dict[str, Any], k: int) -> np.ndarray:
    """The lists recsmith serves (same call as ``evaluate_model``), kept for list-overlap checks."""
    from recsmith.bundle import ModelBundle
    from recsmith.models.registry import create

    bundle = ModelBundle.train(p.data, create(model, **params))
    top, _ = bundle.top_k(p.truth.user_ids, k)
    return top.ids.astype(np.int64)


def implicit_als(p: Prepared, params: dict[str, Any]) -> tuple[Any, float]:
    from implicit.cpu.als import AlternatingLeastSquares

    started = time.perf_counter()
    model = AlternatingLeastSquares(
        factors=params["factors"],
        regularization=params["regularization"],
        alpha=params["alpha"],
        iterations=params["iterations"],
        random_state=params["random_state"],
        num_threads=params.get("num_threads", 0),
    )
    model.fit(p.matrix, show_progress=False)
    return model, time.perf_counter() - started


def implicit_als_lists(model: Any, p: Prepared, k: int) -> np.ndarray:
    ids, _ = model.recommend(
        p.user_index, p.matrix[p.user_index], N=k, filter_already_liked_items=True
    )
    return ids


def implicit_knn(p: Prepared, neighbors: int, k: int) -> Row:
    """CosineRecommender keeps the item itself among its K neighbours, so K = neighbors + 1."""
    from implicit.nearest_neighbours import CosineRecommender

    started = time.perf_counter()
    model = CosineRecommender(K=neighbors + 1, num_threads=1)  # recsmith itemknn: 1 thread
    model.fit(p.matrix, show_progress=False)
    fit = time.perf_counter() - started
    ids, _ = model.recommend(
        p.user_index, p.matrix[p.user_index], N=k, filter_already_liked_items=True
    )
    short = int((np.asarray(ids) < 0).any(axis=1).sum())
    note = f"{short} short list(s), not filled" if short else ""
    return score_lists(
        "itemknn (Cosine)", {"neighbors": neighbors, "shrinkage": 0.0}, ids, p, k, [fit], note
    )


# ---- the main comparison ----------------------------------------------------------------------


@dataclass
class ALSTiming:
    """Fit seconds per run, wall clock and process CPU, for one OpenMP thread count."""

    threads: int  # implicit's num_threads on both sides (0 = all cores)
    runs: dict[str, list[tuple[float, float]]]  # what -> [(wall, cpu), ...]
    max_factor_diff: float

    def median(self, what: str, clock: int = 0) -> float:
        return statistics.median(run[clock] for run in self.runs[what])

    def ratio(self, what: str = BUNDLE, clock: int = 0) -> float:
        return self.median(what, clock) / self.median(IMPLICIT, clock)

    def min_ratio(self, what: str = BUNDLE, clock: int = 0) -> float:
        """Ratio of the fastest runs: for identical work, the estimate least hit by other load."""
        best = min(run[clock] for run in self.runs[what])
        return best / min(run[clock] for run in self.runs[IMPLICIT])

    def verdict(self, clock: int = 0) -> str:
        ok = [
            self.ratio(clock=clock) <= MAX_FIT_RATIO,
            self.min_ratio(clock=clock) <= MAX_FIT_RATIO,
        ]
        if all(ok):
            return "PASS"
        if not any(ok):
            return "FAIL"
        return "INCONCLUSIVE (median and min disagree: load noise)"


def _clocked(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def _time_als(
    p: Prepared, params: dict[str, Any], repeats: int
) -> tuple[dict[str, list[tuple[float, float]]], ImplicitALS, Any]:
    """``repeats`` interleaved rounds, order rotated each round, of (a) ``ModelBundle.train`` —
    exactly what ``evaluate_model`` reports as ``fit_seconds`` —, (b) ``ImplicitALS.fit`` alone,
    (c) implicit's ``AlternatingLeastSquares(...)`` + ``.fit``; (wall, cpu) seconds per run."""
    from recsmith.bundle import ModelBundle
    from recsmith.models.registry import create

    runs: dict[str, list[tuple[float, float]]] = {BUNDLE: [], OURS_FIT: [], IMPLICIT: []}
    last: dict[str, Any] = {}
    steps: dict[str, Callable[[], Any]] = {
        # models are created outside the clock, as evaluate_model does
        BUNDLE: lambda: partial(ModelBundle.train, p.data, create("ials", **params)),
        OURS_FIT: lambda: partial(ImplicitALS(**params).fit, p.data),
        IMPLICIT: lambda: partial(implicit_als, p, params),
    }
    names = list(steps)
    for rep in range(repeats):
        for name in names[rep % 3 :] + names[: rep % 3]:
            call = steps[name]()
            last[name], wall, cpu = _clocked(call)
            runs[name].append((wall, cpu))
    return runs, last[OURS_FIT], last[IMPLICIT][0]


def compare_als(
    p: Prepared, params: dict[str, Any], k: int, repeats: int, threads: Sequence[int] = (0,)
) -> tuple[Row, Row, list[ALSTiming]]:
    """recsmith ials and implicit direct with the same params.

    Metrics: recsmith through ``evaluate_model`` (runner), implicit via ``recommend``. Timing: see
    ``_time_als``, once per OpenMP thread count. Metrics come from the first thread count.
    """

    timings = []
    ours_row = theirs = None
    for nt in threads:
        params_nt = {**params, "num_threads": nt}
        runs, ours, model = _time_als(p, params_nt, repeats)
        assert ours is not None and model is not None
        diff = max(
            float(np.abs(ours.user_factors_ - model.user_factors).max()),
            float(np.abs(ours.item_factors_ - model.item_factors).max()),
        )
        timing = ALSTiming(nt, runs, diff)
        timings.append(timing)
        log(
            f"    num_threads={nt}: wall medians: bundle {timing.median(BUNDLE):.3f}s, "
            f"ImplicitALS.fit {timing.median(OURS_FIT):.3f}s, implicit "
            f"{timing.median(IMPLICIT):.3f}s (ratio {timing.ratio():.3f}); factor diff {diff:.1e}"
        )
        if ours_row is None:
            result = evaluate_model("ials", p.data, p.truth, k, params_nt, METRICS)
            ours_row = from_result(result, recsmith_lists(p, "ials", params_nt, k))
            ours_row.fit_runs = [w for w, _ in runs[BUNDLE]]
            ours_row.fit_seconds = statistics.median(ours_row.fit_runs)
            theirs = score_lists(
                "ials (ALS)",
                dict(params_nt),
                implicit_als_lists(model, p, k),
                p,
                k,
                [w for w, _ in runs[IMPLICIT]],
            )
    assert ours_row is not None and theirs is not None
    return ours_row, theirs, timings


def als_overhead(p: Prepared, fit_seconds: float, n: int = 20) -> list[str]:
    """What recsmith does around implicit's fit, each step timed alone (median of ``n``)."""
    from recsmith.models.popularity import Popular

    rng = np.random.default_rng(0)
    factors = rng.random((p.data.n_users, 64), dtype=np.float32)

    def enter_limits() -> None:
        with threadpool_limits(limits=1, user_api="blas"):
            pass

    steps = {
        "`threadpool_limits(limits=1, user_api='blas')` enter + exit (als.py)": enter_limits,
        "`sparse.csr_matrix(data.matrix)` (als.py)": lambda: sparse.csr_matrix(p.data.matrix),
        "2 × `np.ascontiguousarray(factors, float32)` (als.py)": lambda: (
            np.ascontiguousarray(factors, dtype=np.float32),
            np.ascontiguousarray(factors, dtype=np.float32),
        ),
        "`Popular().fit(data)` fallback (bundle.py)": lambda: Popular().fit(p.data),
        "`data.fingerprint()` (bundle.py)": p.data.fingerprint,
        "`data.matrix.tocsr()` (bundle.py)": p.data.matrix.tocsr,
    }
    lines = [
        "recsmith's work around implicit's fit, each step timed alone (median of "
        f"{n}), against implicit's median fit of {fit_seconds:.3f} s:",
        "",
        "| step | ms | % of implicit fit |",
        "|---|---:|---:|",
    ]
    total = 0.0
    for name, fn in steps.items():
        times = []
        for _ in range(n):
            _, wall, _ = _clocked(fn)
            times.append(wall)
        med = statistics.median(times)
        total += med
        lines.append(f"| {name} | {med * 1000:.2f} | {med / fit_seconds:.2%} |")
    lines += [f"| **total** | **{total * 1000:.2f}** | **{total / fit_seconds:.2%}** |", ""]
    return lines


def timing_lines(timings: list[ALSTiming]) -> list[str]:
    lines = [
        "ALS fit seconds per run, `wall/cpu` (interleaved rounds; BLAS 1 thread; `num_threads` ="
        " implicit's OpenMP threads, the same on both sides, 0 = all cores = recsmith's default;"
        " cpu = process CPU time, which under OpenMP includes spin-waiting):",
        "",
        "| num_threads | what | runs wall/cpu | median wall | median cpu |",
        "|---:|---|---|---:|---:|",
    ]
    for t in timings:
        for what, runs in t.runs.items():
            lines.append(
                f"| {t.threads} | {what} | {', '.join(f'{w:.3f}/{c:.3f}' for w, c in runs)} | "
                f"{t.median(what):.3f} | {t.median(what, 1):.3f} |"
            )
    lines += (
        [""]
        + [
            f"num_threads={t.threads}: recsmith/implicit wall ratio {t.ratio():.3f} "
            f"(ModelBundle.train), {t.ratio(OURS_FIT):.3f} (ImplicitALS.fit alone); cpu ratio "
            f"{t.ratio(clock=1):.3f} / {t.ratio(OURS_FIT, 1):.3f}; largest |difference| between "
            f"recsmith's and implicit's learned factors {t.max_factor_diff:.2e}."
            for t in timings
        ]
        + [""]
    )
    return lines


def list_agreement(a: np.ndarray | None, b: np.ndarray | None) -> tuple[float, float]:
    """(share of identical ordered lists, mean Jaccard of the item sets)."""
    if a is None or b is None:
        return float("nan"), float("nan")
    same = float((a == b).all(axis=1).mean())
    jac = [len(set(x) & set(y)) / max(len(set(x) | set(y)), 1) for x, y in zip(a, b, strict=True)]
    return same, float(np.mean(jac))


def beats_popular(r: Row, pop: Row, k: int, tag: str) -> str:
    """Goal (a): relative ndcg lift >= MIN_LIFT and a paired Wilcoxon p < ALPHA_TEST."""
    lift = r.metrics["ndcg"] / max(pop.metrics["ndcg"], 1e-12) - 1
    pv = paired_p(r.per_user_ndcg, pop.per_user_ndcg)
    ok = lift >= MIN_LIFT and pv < ALPHA_TEST
    return (
        f"- {tag} {r.model} ({_short(r.params)}) vs popular: ndcg@{k} "
        f"{r.metrics['ndcg']:.4f} vs {pop.metrics['ndcg']:.4f} ({lift:+.1%}), paired "
        f"Wilcoxon p = {pv:.2g} over {len(r.per_user_ndcg)} users → "
        f"**{'PASS' if ok else 'FAIL'}**"
    )


def paired_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value on per-user ndcg (1.0 when all pairs are equal)."""
    d = a - b
    if not np.any(d):
        return 1.0
    return float(stats.wilcoxon(a, b, zero_method="wilcox").pvalue)


# ---- hyperparameter check -------------------------------------------------------------------


def grid(space: dict[str, Sequence[Any]]) -> list[dict[str, Any]]:
    keys = list(space)
    return [dict(zip(keys, values, strict=True)) for values in product(*space.values())]


def tune(
    val: Prepared, model: str, space: dict[str, Sequence[Any]], base: dict[str, Any], k: int
) -> list[tuple[dict[str, Any], ModelResult]]:
    out = []
    settings = grid(space)
    for n, setting in enumerate(settings, 1):
        params = {**base, **setting}
        result = evaluate_model(model, val.data, val.truth, k, params, METRICS)
        out.append((params, result))
        log(
            f"    {model} {n}/{len(settings)} {_short(setting)}: "
            f"val ndcg@{k}={result.metrics['ndcg']:.4f} ({result.fit_seconds:.2f}s)"
        )
    out.sort(key=lambda pr: -pr[1].metrics["ndcg"])
    return out


# ---- report ---------------------------------------------------------------------------------


def table(rows: list[Row], k: int, with_params: bool = True) -> list[str]:
    head = ["model", "source"] + (["params"] if with_params else [])
    head += [f"{m}@{k}" for m in METRICS] + [f"coverage@{k}", "fit s"]
    lines = [
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---"] * (2 + with_params) + ["---:"] * (len(METRICS) + 2)) + "|",
    ]
    for r in rows:
        cells = [r.model, r.source] + ([_short(r.params)] if with_params else [])
        cells += [f"{r.metrics[m]:.4f}" for m in METRICS]
        fit = f"{r.fit_seconds:.3f}"
        if len(r.fit_runs) > 1:
            fit += " (median of " + str(len(r.fit_runs)) + ")"
        cells += [f"{r.coverage:.4f}", fit]
        if r.note:
            cells[0] += f" ({r.note})"
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def print_table(title: str, rows: list[Row], k: int) -> None:
    print(f"\n{title}")
    head = f"{'model':<18} {'source':<9}" + "".join(f"{m + '@' + str(k):>12}" for m in METRICS)
    head += f"{'coverage':>10}{'fit s':>9}"
    print(head)
    for r in rows:
        line = f"{r.model:<18} {r.source:<9}" + "".join(f"{r.metrics[m]:>12.4f}" for m in METRICS)
        print(line + f"{r.coverage:>10.4f}{r.fit_seconds:>9.3f}")


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    blas = ", ".join(
        f"{i['internal_api']} {i['version']} ({i['prefix']}, {i['num_threads']} threads by default)"
        for i in threadpool_info()
        if i["user_api"] == "blas"
    )
    return {
        "load": f"{os.getloadavg()[0]:.2f}",
        "nproc": str(len(os.sched_getaffinity(0))),
        "cpu": cpu,
        "memory": mem,
        "os": platform.platform(),
        "python": platform.python_version(),
        "blas": blas,
    }


def versions() -> dict[str, str]:
    out = {}
    for name in ("recsmith", "implicit", "numpy", "scipy", "pandas", "threadpoolctl"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "?"
    return out


def command() -> str:
    exe = Path(sys.executable)
    try:
        exe_s = str(exe.relative_to(Path.cwd()))
    except ValueError:
        exe_s = str(exe)
    return shlex.join([exe_s, *sys.argv])


# ---- one dataset × split --------------------------------------------------------------------


def run_one(
    dataset: str,
    events: pd.DataFrame,
    load_info: dict[str, int],
    split_spec: str,
    k: int,
    repeats: int,
    threads: Sequence[int],
    do_tune: bool,
    md: list[str],
    verdicts: list[str],
) -> None:
    weights = dict(EventSettings().weights)
    spec = parse_split(split_spec)
    log(f"{dataset} {spec.name}: splitting and building the train matrix")
    p = prepare(events, spec.apply(events), weights)
    s = p.stats
    log(
        f"  {s['train_events']:,} train / {s['test_events']:,} test events; "
        f"{s['evaluated_users']} users evaluated ({s['test_users']} test users, "
        f"{s['test_users_cold']} not in train)"
    )

    # 1. defaults: recsmith through the runner, implicit direct on the same matrix
    rows: list[Row] = []
    log("  recsmith popular")
    rows.append(from_result(evaluate_model("popular", p.data, p.truth, k, {}, METRICS)))
    log("  recsmith itemknn (defaults)")
    knn_params = {"neighbors": 100, "shrinkage": 10.0}
    rows.append(from_result(evaluate_model("itemknn", p.data, p.truth, k, knn_params, METRICS)))
    knn0 = {"neighbors": 100, "shrinkage": 0.0}
    log("  recsmith itemknn (shrinkage 0, the reference for implicit's cosine kNN)")
    rows.append(from_result(evaluate_model("itemknn", p.data, p.truth, k, knn0, METRICS)))
    log("  implicit CosineRecommender (K=101)")
    rows.append(implicit_knn(p, 100, k))
    log(
        f"  ials defaults, recsmith vs implicit direct, {repeats} interleaved fits each, "
        f"num_threads {list(threads)}"
    )
    ours, theirs, timings = compare_als(p, dict(ALS_DEFAULTS), k, repeats, threads)
    rows += [ours, theirs]
    print_table(f"{dataset} {spec.name} (defaults)", rows, k)

    md += [f"### {dataset}, split `{spec.name}`", ""]
    md += [
        f"Import: {load_info['read']:,} ratings read, {load_info['rejected']} rejected by "
        f"validation. Train: {s['train_events']:,} events before {s['cut']} (last train event "
        f"{s['train_end']}), {s['train_users']:,} users × {s['train_items']:,} items. "
        f"Test: {s['test_events']:,} events from {s['test_users']:,} users, of whom "
        f"{s['test_users_cold']:,} have no training history (cold: not evaluable) → "
        f"**{s['evaluated_users']:,} users evaluated** ({s['truth_items']:,} held-out "
        "(user, item) pairs not already in their train history).",
        "",
    ]
    md += ["Default parameters:", "", *table(rows, k), ""]

    md += timing_lines(timings)
    md += als_overhead(p, timings[0].median(IMPLICIT))

    # verdicts on defaults
    pop = rows[0]
    same_lists, jac = list_agreement(ours.recs, theirs.recs)
    gap = abs(ours.metrics["ndcg"] - theirs.metrics["ndcg"]) / max(theirs.metrics["ndcg"], 1e-12)
    knn_equal = np.allclose(rows[2].per_user_ndcg, rows[3].per_user_ndcg, rtol=0, atol=1e-12)
    checks = []
    checks += [beats_popular(r, pop, k, "(a)") for r in (rows[1], ours)]
    checks.append(
        f"- (b) recsmith ials vs implicit direct: ndcg@{k} {ours.metrics['ndcg']:.4f} vs "
        f"{theirs.metrics['ndcg']:.4f} (relative gap {gap:.2%}); identical ordered lists for "
        f"{same_lists:.1%} of users, mean Jaccard {jac:.3f} → "
        f"**{'PASS' if gap <= MAX_NDCG_GAP else 'FAIL'}**"
    )
    for t in timings:
        checks.append(
            f"- (c) num_threads={t.threads}: recsmith ials fit / implicit fit over "
            f"{len(t.runs[IMPLICIT])} runs each, ModelBundle.train (what the runner reports) / "
            f"ImplicitALS.fit alone: wall median {t.ratio():.3f} / {t.ratio(OURS_FIT):.3f}, min "
            f"{t.min_ratio():.3f} / {t.min_ratio(OURS_FIT):.3f} → **{t.verdict()}**; process CPU "
            f"median {t.ratio(clock=1):.3f} / {t.ratio(OURS_FIT, 1):.3f}, min "
            f"{t.min_ratio(clock=1):.3f} / {t.min_ratio(OURS_FIT, 1):.3f} → **{t.verdict(1)}** "
            f"(limit {MAX_FIT_RATIO:.2f}; factors bit-identical: {t.max_factor_diff == 0})"
        )
    checks.append(
        f"- reference: recsmith itemknn (shrinkage 0, 100 neighbours) vs implicit "
        f"CosineRecommender(K=101): ndcg@{k} {rows[2].metrics['ndcg']:.4f} vs "
        f"{rows[3].metrics['ndcg']:.4f}; per-user ndcg identical for every user: {knn_equal}"
    )
    md += ["Checks (defaults):", "", *checks, ""]
    title = f"**{dataset} {spec.name}** ({s['evaluated_users']} users evaluated)"
    verdicts += ["", title, "", *checks]

    if not do_tune:
        return

    # 2. hyperparameter check on a validation split carved from TRAIN
    log(f"  tuning on a {spec.name} validation split of the train part")
    val = prepare(p.split.train, spec.apply(p.split.train), weights)
    vs = val.stats
    log(
        f"  validation: {vs['train_events']:,} / {vs['test_events']:,} events, "
        f"{vs['evaluated_users']} users evaluated"
    )
    # one OpenMP thread while tuning: same factors, and steadier on a busy 2-core machine
    base_als = {**{k_: v for k_, v in ALS_DEFAULTS.items() if k_ not in ALS_GRID}, "num_threads": 1}
    als_results = tune(val, "ials", ALS_GRID, base_als, k)
    knn_results = tune(val, "itemknn", KNN_GRID, {}, k)
    best_als, best_knn = als_results[0][0], knn_results[0][0]

    log(f"  test with chosen ials {_short(best_als)} and itemknn {_short(best_knn)}")
    tuned: list[Row] = [rows[0]]
    tuned.append(from_result(evaluate_model("itemknn", p.data, p.truth, k, best_knn, METRICS)))
    tuned.append(implicit_knn(p, best_knn["neighbors"], k))
    best_als = {x: v for x, v in best_als.items() if x != "num_threads"}
    t_ours, t_theirs, t_timings = compare_als(p, best_als, k, repeats, threads[:1])
    t_timing = t_timings[0]
    tuned += [t_ours, t_theirs]
    print_table(f"{dataset} {spec.name} (tuned on validation)", tuned, k)

    md += [
        f"Hyperparameter check: validation = the same `{spec.name}` rule applied to the train "
        f"part ({vs['train_events']:,} / {vs['test_events']:,} events, "
        f"{vs['evaluated_users']:,} users evaluated); {len(als_results)} ials and "
        f"{len(knn_results)} itemknn settings, chosen by validation ndcg@{k}.",
        "",
        f"| ials setting (top 5 of {len(als_results)}) | val ndcg@{k} | val recall@{k} |",
        "|---|---:|---:|",
    ]
    for params, res in als_results[:5]:
        md.append(
            f"| {_short({x: params[x] for x in ALS_GRID})} | {res.metrics['ndcg']:.4f} "
            f"| {res.metrics['recall']:.4f} |"
        )
    default_val = next(
        r for pr, r in als_results if all(pr[x] == ALS_DEFAULTS[x] for x in ALS_GRID)
    )
    md.append(
        f"| (defaults) {_short({x: ALS_DEFAULTS[x] for x in ALS_GRID})} | "
        f"{default_val.metrics['ndcg']:.4f} | {default_val.metrics['recall']:.4f} |"
    )
    md += [
        "",
        f"| itemknn setting (all {len(knn_results)}) | val ndcg@{k} | val recall@{k} |",
        "|---|---:|---:|",
    ]
    for params, res in knn_results:
        md.append(f"| {_short(params)} | {res.metrics['ndcg']:.4f} | {res.metrics['recall']:.4f} |")
    t_ratio = t_timing.ratio()
    t_gap = abs(t_ours.metrics["ndcg"] - t_theirs.metrics["ndcg"]) / max(
        t_theirs.metrics["ndcg"], 1e-12
    )
    t_same, t_jac = list_agreement(t_ours.recs, t_theirs.recs)
    md += [
        "",
        "Test metrics of the chosen settings (implicit's CosineRecommender has no "
        "shrinkage: it runs with the chosen neighbour count only):",
        "",
    ]
    md += [*table(tuned, k), ""]
    tuned_checks = [
        beats_popular(tuned[1], tuned[0], k, "(a, tuned)"),
        beats_popular(t_ours, tuned[0], k, "(a, tuned)"),
        f"- tuned ials: recsmith vs implicit direct ndcg@{k} {t_ours.metrics['ndcg']:.4f} vs "
        f"{t_theirs.metrics['ndcg']:.4f} (gap {t_gap:.2%}, identical lists {t_same:.1%}, "
        f"Jaccard {t_jac:.3f}); fit ratio (num_threads={t_timing.threads}, median of "
        f"{len(t_timing.runs[IMPLICIT])}) wall {t_ratio:.3f} (min {t_timing.min_ratio():.3f}), "
        f"cpu {t_timing.ratio(clock=1):.3f}; "
        "factor diff "
        f"{t_timing.max_factor_diff:.2e}",
        f"- tuned vs default on test ndcg@{k}: ials {ours.metrics['ndcg']:.4f} → "
        f"{t_ours.metrics['ndcg']:.4f}, itemknn {rows[1].metrics['ndcg']:.4f} → "
        f"{tuned[1].metrics['ndcg']:.4f}",
    ]
    md += [*tuned_checks, ""]
    verdicts += tuned_checks


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=[*DATASETS, "all"], default="all")
    parser.add_argument(
        "--split",
        default="temporal:0.8",
        help="split spec, or several separated by commas (default temporal:0.8)",
    )
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=6, help="ALS fits per side for timing")
    parser.add_argument(
        "--threads",
        default="0,1",
        help="implicit num_threads settings to time ALS with, on both sides; the "
        "first also gives the metrics and the tuned comparison (default 0,1; "
        "0 = all cores, recsmith's default)",
    )
    parser.add_argument(
        "--tune",
        choices=["first", "all", "none"],
        default="first",
        help="run the hyperparameter check on the first split only (default), "
        "on every split, or not at all",
    )
    parser.add_argument("--out", type=Path, default=None, help="write the markdown report here")
    args = parser.parse_args(argv)
    print(calibration_line(), flush=True)

    datasets = list(DATASETS) if args.dataset == "all" else [args.dataset]
    splits = [s.strip() for s in args.split.split(",") if s.strip()]
    threads = [int(t) for t in args.threads.split(",") if t.strip()]
    for s in splits:
        parse_split(s)  # fail early on a typo
    started = time.perf_counter()
    info = machine()
    md: list[str] = []
    verdicts: list[str] = []

    # implicit's CosineRecommender hands its own kNN a COO matrix and warns about it
    warnings.filterwarnings("ignore", message="Method expects CSR input")
    with threadpool_limits(limits=1, user_api="blas"):
        for dataset in datasets:
            log(f"loading {dataset} through the movielens importer + validate_events")
            events, load_info = load_events(dataset)
            log(f"  {load_info['events']:,} valid events")
            for n, split_spec in enumerate(splits):
                do_tune = args.tune == "all" or (args.tune == "first" and n == 0)
                run_one(
                    dataset,
                    events,
                    load_info,
                    split_spec,
                    args.k,
                    args.repeats,
                    threads,
                    do_tune,
                    md,
                    verdicts,
                )

    total = time.perf_counter() - started
    cpu_total = time.process_time()
    log(f"done in {total:.0f}s")
    if args.out is not None:
        v = versions()
        header = [
            "# Accuracy and fit time: recsmith vs the implicit library",
            "",
            f"Generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by "
            f"`benchmarks/accuracy_vs_implicit.py` in {total:.0f} s wall, {cpu_total:.0f} s "
            "process CPU (the machine is shared: other jobs ran at the same time, see the load "
            "averages below).",
            "",
            "```",
            command(),
            "```",
            "",
            f"- Datasets: {', '.join(f'`{d}` ({DATA_ROOT / DATASETS[d]})' for d in datasets)}, "
            "read with recsmith's `movielens` importer and `validate_events`; event weight = star "
            'value (`events.weights.rating = "value"`), so ALS confidence = 1 + alpha × stars.',
            f"- Splits: {', '.join(f'`{s}`' for s in splits)} (global time cut; test users "
            "without train history cannot be evaluated). k = "
            f"{args.k}. Truth = every test rating (any star value) of a known user, minus items "
            "already in their train history; cold test items stay in the truth (never hit).",
            "- recsmith rows: `recsmith.evaluation.runner.evaluate_model` (the serving path: "
            "seen items excluded, short lists filled with popular items). implicit rows: "
            "`implicit` called directly on `csr_matrix(Interactions.from_events(train, "
            "weights).matrix)`, `recommend(..., filter_already_liked_items=True)`, scored by the "
            "same `compute_metrics` against the same `ground_truth`.",
            "- Timing: BLAS limited to 1 thread for the whole run (threadpoolctl). implicit's "
            "OpenMP threads (`num_threads`) are the same on both sides; ALS is timed at "
            f"num_threads = {', '.join(map(str, threads))} (0 = all {info['nproc']} cores, "
            f"recsmith's default), median of {args.repeats} interleaved fits per side. The "
            "metrics tables use the first setting; validation fits use 1 thread (same factors). "
            f"Load average at start: {info['load']}, at end: {os.getloadavg()[0]:.2f} (1 min).",
            f"- Machine: {info['nproc']} CPUs (nproc), {info['cpu']}, {info['memory']} RAM; "
            f"{info['os']}; Python {info['python']}; BLAS: {info['blas']}.",
            "- Versions: " + ", ".join(f"{n} {x}" for n, x in v.items()) + ".",
            "",
            "## Summary of checks",
            "",
            *verdicts,
            "",
            "## Results",
            "",
        ]
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(header + md) + "\n")
        log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
