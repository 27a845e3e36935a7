#!/usr/bin/env python
"""recsmith side by side with implicit, RecTools and LensKit: same split, same metric code.

Protocol (the same for every library):

1. Each dataset is read with recsmith's importer (``read_source(format, path)``) and every chunk is
   validated with ``validate_events(chunk.rows, EventSettings())``; event weights are recsmith's
   defaults (rating = star value, play = log(1 + plays), view = 1).
2. One split per dataset (``parse_split``): ``temporal:0.8`` for the MovieLens sets,
   ``random:0.2`` for lastfm (it has no listening times: every play carries one fixed time) and
   ``leave-last-out`` for diginetica (sessions).
   Train = ``Interactions.from_events(train, weights)``;
   truth = ``ground_truth(data, test, weights)`` (test users known in train: their test items
   netting above 0 under ``weights``, their train items removed).
3. Every library trains on that same ``data.matrix`` (user / item index order of ``data.users`` /
   ``data.items``), each in its own data format, and makes top-k lists for ``truth.user_ids`` with
   the seen training items excluded. The lists are mapped to recsmith's item indices and scored with
   ``recsmith.evaluation.metrics.compute_metrics`` and ``catalog_coverage``. recsmith's models go
   through ``recsmith.evaluation.runner.evaluate_model`` (the serving path).
4. Tuning, the same budget for every library: a validation split is carved from TRAIN by the same
   rule (``validation_split(split.train, spec)``); every tunable family runs there at its defaults,
   the family with the best validation ndcg@k is the library's "best family", and its grid (at most
   ``--max-configs`` configurations, the defaults counted, in the listed order, stopping once
   ``--tune-budget`` seconds of fitting+recommending have been spent) is searched on validation. The
   picked configuration is then refit on the full train part and scored on test.

Dense item × item models (EASE, and recsmith's hybrid that contains EASE) are skipped, for every
library alike, on a dataset whose train catalogue exceeds ``--dense-max-items`` (the Gram matrix
inverse is O(items³)).

Run it in the peers venv (``/tmp/peers-venv``: recsmith installed editable, plus rectools and
lenskit), from the repository root::

    /tmp/peers-venv/bin/python benchmarks/peers.py --out benchmarks/results/peers.md

Everything after the line ``<!-- analysis -->`` in an existing ``--out`` file is kept, so a
hand-written analysis survives a re-run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shlex
import sys
import time
import traceback
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

sys.path.insert(0, str(Path(__file__).resolve().parent))

from calibration import calibration_line
from peers_libs import LIBRARIES, Family, Library, Outcome, interaction_frame, thread_info

from recsmith.config import EventSettings
from recsmith.evaluation.metrics import catalog_coverage, compute_metrics
from recsmith.evaluation.runner import GroundTruth, ground_truth
from recsmith.evaluation.significance import paired_test
from recsmith.evaluation.split import SplitSpec, parse_split, validation_split
from recsmith.events.importers.base import read_source
from recsmith.events.validate import validate_events, validate_items
from recsmith.features.interactions import Interactions

DATA_ROOT = Path(os.environ.get("RECSMITH_DATASETS", "/work/shared/datasets"))
METRICS = ("ndcg", "recall", "precision", "map")
ANALYSIS_MARK = "<!-- analysis -->"


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    folder: str
    format: str
    split: str
    why: str


DATASETS = {
    d.name: d
    for d in (
        DatasetSpec(
            "movielens-100k",
            "movielens-100k",
            "movielens",
            "temporal:0.8",
            "global time cut at the 80% quantile of event times",
        ),
        DatasetSpec(
            "movielens-latest-small",
            "movielens-latest-small",
            "movielens",
            "temporal:0.8",
            "global time cut at the 80% quantile of event times",
        ),
        DatasetSpec(
            "lastfm-hetrec2011",
            "lastfm-hetrec2011",
            "lastfm-hetrec",
            "random:0.2",
            "no listening times (every play has the same fixed time): random 20% of (user, artist) "
            "pairs held out, seed 0",
        ),
        DatasetSpec(
            "diginetica-sample",
            "diginetica-sample",
            "diginetica",
            "leave-last-out",
            "each actor's (user, or session when anonymous) last view held out",
        ),
    )
}

_T0 = time.perf_counter()


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - _T0:7.1f}s] {msg}", file=sys.stderr, flush=True)


# ---- data ---------------------------------------------------------------------------------------


def load_events(spec: DatasetSpec) -> tuple[pd.DataFrame, dict[str, int]]:
    settings = EventSettings()
    frames, rejected, read = [], 0, 0
    for chunk in read_source(spec.format, DATA_ROOT / spec.folder).events:
        valid, bad = validate_events(chunk.rows, settings, offset=chunk.offset)
        frames.append(valid)
        rejected += len(bad) + len(chunk.rejections)
        read += len(chunk)
    events = pd.concat(frames, ignore_index=True)
    return events, {"read": read, "rejected": rejected, "events": len(events)}


@dataclass
class Prepared:
    """One train/test pair: recsmith's train interactions, the truth, and views for the peers."""

    label: str  # "test" | "validation"
    split_name: str
    data: Interactions
    truth: GroundTruth
    user_index: np.ndarray  # internal user indices of truth.user_ids (row order of every list)
    matrix: sparse.csr_matrix  # data.matrix as a scipy csr_matrix (implicit wants the old class)
    frame: pd.DataFrame  # (user, item, weight, datetime) of data.matrix, for RecTools / LensKit
    stats: dict[str, Any]
    cache: dict[str, Any] = field(default_factory=dict)
    events: pd.DataFrame | None = None  # the train part's events (what the pipeline trains on)
    items: Sequence[Any] = ()  # the catalogue, as ``recsmith train --items`` reads it

    @property
    def user_index_sorted(self) -> np.ndarray:
        return np.sort(self.user_index)

    @property
    def user_index_order(self) -> np.ndarray:
        return np.argsort(self.user_index, kind="stable")


def load_items(spec: DatasetSpec) -> list[Any]:
    """The dataset's catalogue through recsmith's importer and ``validate_items``."""
    source = read_source(spec.format, DATA_ROOT / spec.folder)
    return [item for chunk in source.items for item in validate_items(chunk.rows)[0]]


def prepare(
    label: str,
    train: pd.DataFrame,
    test: pd.DataFrame,
    split_name: str,
    items: Sequence[Any] = (),
) -> Prepared:
    data = Interactions.from_events(train, EventSettings().weights)
    truth = ground_truth(data, test, EventSettings().weights)
    matrix = sparse.csr_matrix(data.matrix, dtype=np.float32)
    matrix.sort_indices()
    user_index = data.users.to_index(truth.user_ids).astype(np.int64)
    stats = {
        "train_events": len(train),
        "test_events": len(test),
        "users": data.n_users,
        "items": data.n_items,
        "nnz": int(matrix.nnz),
        "evaluated_users": len(truth.user_ids),
        "truth_pairs": int(truth.matrix.nnz),
        "cold_truth_items": int(truth.matrix.shape[1] - data.n_items),
    }
    return Prepared(
        label,
        split_name,
        data,
        truth,
        user_index,
        matrix,
        interaction_frame(data),
        stats,
        events=train,
        items=items,
    )


# ---- rows ---------------------------------------------------------------------------------------


@dataclass
class Row:
    dataset: str
    library: str
    family: str
    model: str
    config: str  # "defaults" | "tuned: ..."
    params: dict[str, Any]
    metrics: dict[str, float]
    coverage: float
    fit_seconds: float
    recommend_seconds: float
    note: str = ""
    tuned: bool = False
    val_ndcg: float | None = None  # validation ndcg@k of the config (tuning runs only)
    per_user: np.ndarray | None = field(default=None, repr=False)  # test ndcg per evaluated user


def score(outcome: Outcome, p: Prepared, k: int) -> tuple[dict[str, float], float, str, np.ndarray]:
    """The same metric code for every library: recsmith's ``compute_metrics`` + coverage."""
    if outcome.result is not None:  # recsmith: evaluate_model already scored it
        r = outcome.result
        return {m: r.metrics[m] for m in METRICS}, r.coverage, outcome.note, r.per_user["ndcg"]
    recs = np.asarray(outcome.recs, dtype=np.int64).copy()
    bad = (recs < -1) | (recs >= p.data.n_items)
    recs[bad] = -1
    notes = [outcome.note] if outcome.note else []
    short = int((recs < 0).any(axis=1).sum())
    if short:
        notes.append(f"{short} short list(s), not filled")
    if bad.any():
        notes.append(f"{int(bad.sum())} out-of-range id(s) dropped")
    # a list must not repeat an item (compute_metrics refuses): keep first occurrences
    for row in np.flatnonzero([len(set(r[r >= 0])) < (r >= 0).sum() for r in recs]):
        seen: set[int] = set()
        for j, item in enumerate(recs[row]):
            if item >= 0 and item in seen:
                recs[row, j] = -1
            seen.add(int(item))
        notes.append("duplicate ids dropped")
    result = compute_metrics(recs, p.truth.matrix, p.truth.matrix.shape[1], METRICS, k)
    coverage = catalog_coverage(recs, p.data.n_items)
    return result.means, coverage, "; ".join(notes), result.per_user["ndcg"]


def short_params(params: dict[str, Any]) -> str:
    def fmt(v: Any) -> str:
        return f"{v:g}" if isinstance(v, float) else str(v)

    return ", ".join(f"{k}={fmt(v)}" for k, v in params.items()) or "library defaults"


# ---- one library on one dataset -------------------------------------------------------------


@dataclass
class TuneLog:
    library: str
    family_defaults: list[tuple[str, float, float]]  # (family, val ndcg, seconds)
    best_family: str | None
    tried: list[tuple[dict[str, Any], float, float]]  # (overrides, val ndcg, seconds)
    picked: dict[str, Any] | None
    stopped: str = ""


def run_one(
    lib: Library, family: Family, params: dict[str, Any], p: Prepared, k: int
) -> tuple[dict[str, float], float, Outcome, str, np.ndarray]:
    outcome = lib.run(family, params, p, k)
    metrics, coverage, note, per_user = score(outcome, p, k)
    return metrics, coverage, outcome, note, per_user


def families_for(lib: Library, p: Prepared, dense_max_items: int) -> tuple[list[Family], str]:
    fams, skipped = [], []
    for fam in lib.families.values():
        if fam.dense and p.data.n_items > dense_max_items:
            skipped.append(fam.label)
            if fam.without_dense is not None:
                fams.append(fam.without_dense)
            continue
        fams.append(fam)
    note = ""
    if skipped:
        note = (
            f"skipped (dense item×item, {p.data.n_items:,} train items > --dense-max-items "
            f"{dense_max_items:,}): {', '.join(skipped)}"
        )
    return fams, note


def bench_library(
    dataset: str,
    lib: Library,
    test: Prepared,
    val: Prepared,
    args: argparse.Namespace,
) -> tuple[list[Row], TuneLog, list[str]]:
    k = args.k
    rows: list[Row] = []
    notes: list[str] = []
    fams, skip_note = families_for(lib, test, args.dense_max_items)
    val_fams, _ = families_for(lib, val, args.dense_max_items)
    val_fams = [f for f in val_fams if f.grid and f.key in {x.key for x in fams}]
    if skip_note:
        notes.append(f"{lib.name}: {skip_note}")

    # 1. every tunable family at its defaults on validation → the best family
    tune = TuneLog(lib.name, [], None, [], None)
    val_scores: dict[str, float] = {}
    spent = 0.0
    for fam in val_fams:
        log(f"    [{lib.name}] validation: {fam.label} defaults")
        started = time.perf_counter()
        try:
            m, *_ = run_one(lib, fam, fam.params({}), val, k)
        except Exception as exc:
            notes.append(f"{lib.name} {fam.label} failed on validation: {exc!r}")
            log(f"      FAILED: {exc!r}")
            continue
        took = time.perf_counter() - started
        val_scores[fam.key] = m["ndcg"]
        tune.family_defaults.append((fam.label, m["ndcg"], took))
        log(f"      val ndcg@{k} {m['ndcg']:.4f} ({took:.1f}s)")
    if val_scores:
        best_key = max(val_scores, key=lambda x: val_scores[x])
        best = lib.families[best_key]
        tune.best_family = best.label
        tune.tried.append(({}, val_scores[best_key], 0.0))
        assert best.grid is not None
        for overrides in best.grid[1 : args.max_configs]:
            if spent >= args.tune_budget:
                tune.stopped = (
                    f"stopped after {len(tune.tried)} of {min(len(best.grid), args.max_configs)} "
                    f"configs: tuning budget {args.tune_budget:.0f}s spent"
                )
                break
            log(f"    [{lib.name}] grid {best.label}: {short_params(overrides)}")
            started = time.perf_counter()
            try:
                m, *_ = run_one(lib, best, best.params(overrides), val, k)
            except Exception as exc:
                notes.append(f"{lib.name} {best.label} {overrides} failed: {exc!r}")
                log(f"      FAILED: {exc!r}")
                continue
            took = time.perf_counter() - started
            spent += took
            tune.tried.append((overrides, m["ndcg"], took))
            log(f"      val ndcg@{k} {m['ndcg']:.4f} ({took:.1f}s)")
        tune.picked = max(tune.tried, key=lambda t: t[1])[0]

    # 2. test: every family at defaults, plus the best family at the picked config
    plan: list[tuple[Family, dict[str, Any], bool]] = [(f, {}, False) for f in fams]
    if tune.best_family is not None and tune.picked:
        best = next(f for f in lib.families.values() if f.label == tune.best_family)
        plan.append((best, tune.picked, True))
    for fam, overrides, tuned in plan:
        params = fam.params(overrides)
        what = f"tuned {short_params(overrides)}" if tuned else "defaults"
        log(f"    [{lib.name}] test: {fam.label} {what}")
        try:
            m, cov, outcome, note, per_user = run_one(lib, fam, params, test, k)
        except Exception as exc:
            notes.append(f"{lib.name} {fam.label} ({what}) failed on test: {exc!r}")
            log(f"      FAILED: {exc!r}")
            traceback.print_exc()
            continue
        shown = dict(outcome.result.params) if outcome.result is not None else params
        rows.append(
            Row(
                dataset,
                lib.name,
                fam.key,
                fam.label,
                "tuned" if tuned else "defaults",
                shown if not tuned else overrides,
                m,
                cov,
                outcome.fit_seconds,
                outcome.recommend_seconds,
                note,
                tuned,
                val_ndcg=max(v for _, v, _ in tune.tried) if tuned else None,
                per_user=per_user,
            )
        )
        # the defaults of the tuned family are also its "picked" config when the grid kept them
        if not tuned and tune.best_family == fam.label and tune.picked == {}:
            rows[-1].config = "defaults (= tuned pick)"
            rows[-1].tuned = True
            rows[-1].val_ndcg = tune.tried[0][1]
        log(
            f"      ndcg@{k} {m['ndcg']:.4f} recall {m['recall']:.4f} cov {cov:.3f} "
            f"fit {outcome.fit_seconds:.2f}s {note}"
        )
    for key in ("rectools_seconds", "lenskit_seconds"):
        if key in test.cache and lib.name.lower().startswith(key.split("_")[0]):
            notes.append(
                f"{lib.name}: building its dataset object took {test.cache[key]:.2f}s on the test "
                "train part (not counted in fit seconds)"
            )
    return rows, tune, notes


# ---- report -------------------------------------------------------------------------------------


HEAD = (
    "| library | model | config | ndcg@{k} | recall@{k} | precision@{k} | map@{k} "
    "| coverage@{k} | fit s | notes |"
)


def table(rows: Sequence[Row], k: int) -> list[str]:
    best = max((r.metrics["ndcg"] for r in rows), default=0.0)
    out = [HEAD.format(k=k), "|---|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        nd = f"{r.metrics['ndcg']:.4f}"
        if r.metrics["ndcg"] == best:
            nd = f"**{nd}**"
        cfg = r.config if not r.tuned or r.config.startswith("defaults") else "tuned: "
        if r.config == "tuned":
            cfg += short_params(r.params)
        out.append(
            f"| {r.library} | {r.model} | {cfg} | {nd} | {r.metrics['recall']:.4f} "
            f"| {r.metrics['precision']:.4f} | {r.metrics['map']:.4f} | {r.coverage:.3f} "
            f"| {r.fit_seconds:.2f} | {r.note} |"
        )
    return out


def print_table(all_rows: Sequence[Row], k: int) -> None:
    cols = [
        "dataset",
        "library",
        "model",
        "config",
        "ndcg",
        "recall",
        "prec",
        "map",
        "cov",
        "fit_s",
    ]
    lines = []
    for r in all_rows:
        cfg = r.config if r.config != "tuned" else "tuned: " + short_params(r.params)
        lines.append(
            [
                r.dataset,
                r.library,
                r.model[:32],
                cfg[:48],
                f"{r.metrics['ndcg']:.4f}",
                f"{r.metrics['recall']:.4f}",
                f"{r.metrics['precision']:.4f}",
                f"{r.metrics['map']:.4f}",
                f"{r.coverage:.3f}",
                f"{r.fit_seconds:.2f}",
            ]
        )
    widths = [max(len(c), *(len(x[i]) for x in lines)) for i, c in enumerate(cols)]
    head = [c.replace("ndcg", f"ndcg@{k}") for c in cols]
    widths = [max(w, len(h)) for w, h in zip(widths, head, strict=True)]
    print("  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for x in lines:
        print("  ".join(v.ljust(w) for v, w in zip(x, widths, strict=True)))


def _compare(a: Row, b: Row, k: int, margin: float) -> str:
    """a (recsmith) vs b (peer) on test ndcg@k: relative lift and a paired test over users."""
    x, y = a.metrics["ndcg"], b.metrics["ndcg"]
    lift = x / y - 1 if y > 0 else float("inf")
    sig = ""
    if a.per_user is not None and b.per_user is not None and len(a.per_user) >= 2:
        t = paired_test(a.per_user, b.per_user)
        sig = (
            f"; per-user difference {t.mean_diff:+.4f} "
            f"(95% CI {t.ci_low:+.4f} … {t.ci_high:+.4f}), "
            f"paired t p = {t.p_value:.2g}, Wilcoxon p = {t.wilcoxon_p_value:.2g}, "
            f"n = {len(a.per_user)} users"
        )
    return (
        f"recsmith {a.model} ({_cfg(a)}) {x:.4f} vs {b.library} {b.model} ({_cfg(b)}) "
        f"{y:.4f}: {lift:+.1%} → **{'YES' if lift >= margin else 'NO'}**{sig}"
    )


def _cfg(r: Row) -> str:
    return "tuned: " + short_params(r.params) if r.config == "tuned" else r.config


def verdict(rows: Sequence[Row], k: int, margin: float) -> list[str]:
    """Two readings of "recsmith's best vs the best peer":

    - selected on validation (the honest one): each library's tuned pick; the best peer is the
      peer pick with the highest *validation* ndcg; compared on test;
    - best on test (optimistic for both sides): the highest test ndcg row of each side.
    """
    ours = [r for r in rows if r.library == "recsmith"]
    peers = [r for r in rows if r.library != "recsmith"]
    if not ours or not peers:
        return ["n/a (recsmith or every peer missing)"]
    out = []
    ours_pick = [r for r in ours if r.tuned and r.val_ndcg is not None]
    peer_picks = [r for r in peers if r.tuned and r.val_ndcg is not None]
    if ours_pick and peer_picks:
        a = ours_pick[0]
        b = max(peer_picks, key=lambda r: r.val_ndcg or 0.0)
        out.append(
            f"selected on validation (val ndcg {a.val_ndcg:.4f} vs {b.val_ndcg:.4f}): "
            + _compare(a, b, k, margin)
        )
    a = max(ours, key=lambda r: r.metrics["ndcg"])
    b = max(peers, key=lambda r: r.metrics["ndcg"])
    out.append("best row on test: " + _compare(a, b, k, margin))
    return out


def machine() -> dict[str, str]:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024**2:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "memory": mem,
        "os": platform.platform(),
        "python": platform.python_version(),
        "load": f"{os.getloadavg()[0]:.2f}",
    }


def versions(libs: Sequence[Library]) -> dict[str, str]:
    out: dict[str, str] = {}
    for lib in libs:
        out.update(lib.versions())
    from importlib import metadata

    for pkg in ("numpy", "scipy", "pandas", "threadpoolctl"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[pkg] = metadata.version(pkg)
    return out


def command() -> str:
    return " ".join(shlex.quote(a) for a in [Path(sys.executable).as_posix(), *sys.argv])


# ---- main ---------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--datasets", default=",".join(DATASETS), help=f"comma list of {', '.join(DATASETS)}"
    )
    parser.add_argument(
        "--libraries", default=",".join(LIBRARIES), help=f"comma list of {', '.join(LIBRARIES)}"
    )
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument(
        "--max-configs", type=int, default=8, help="grid size cap per library (defaults counted)"
    )
    parser.add_argument(
        "--tune-budget",
        type=float,
        default=60.0,
        help="seconds of grid search per library and dataset (after the defaults pass)",
    )
    parser.add_argument(
        "--dense-max-items",
        type=int,
        default=10_000,
        help="skip EASE-like dense models (all libraries) above this many train items",
    )
    parser.add_argument(
        "--split",
        action="append",
        default=[],
        metavar="DATASET=SPEC",
        help="override a dataset's split, e.g. movielens-100k=leave-last-out:5 (repeatable)",
    )
    parser.add_argument(
        "--events-file",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="also a data set NAME read from an events file (`recsmith import`'s columns: "
        "user_id, item_id, event_type, value, timestamp), split temporal:0.8 unless --split "
        "says otherwise; its catalogue is the items in its events (repeatable)",
    )
    parser.add_argument("--margin", type=float, default=0.05, help="'beats' = ndcg lift ≥ this")
    parser.add_argument("--out", type=Path, default=None, help="write the markdown report here")
    parser.add_argument("--json", type=Path, default=None, help="write every row as JSON here")
    parser.add_argument(
        "--per-user",
        type=Path,
        default=None,
        help="write each row's test ndcg per evaluated user here (.npz, one array a row), so any "
        "two rows can be compared paired afterwards",
    )
    args = parser.parse_args(argv)
    print(calibration_line(), flush=True)

    for item in args.events_file:
        name, sep, path = item.partition("=")
        if not sep or not name or not Path(path).is_file():
            parser.error(f"--events-file expects NAME=PATH of an existing file, got {item!r}")
        DATASETS[name] = DatasetSpec(
            name, str(Path(path).resolve()), "events", "temporal:0.8", f"events file {path}"
        )
    if args.events_file and args.datasets == parser.get_default("datasets"):
        args.datasets = ",".join(item.partition("=")[0] for item in args.events_file)
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    for d in datasets:
        if d not in DATASETS:
            parser.error(f"unknown dataset {d!r}; known: {', '.join(DATASETS)}")
    names = [x.strip().lower() for x in args.libraries.split(",") if x.strip()]
    for n in names:
        if n not in LIBRARIES:
            parser.error(f"unknown library {n!r}; known: {', '.join(LIBRARIES)}")
    splits = {d: DATASETS[d].split for d in DATASETS}
    for item in args.split:
        d, sep, spec_text = item.partition("=")
        if not sep or d not in DATASETS:
            parser.error(f"--split expects DATASET=SPEC with a known dataset, got {item!r}")
        parse_split(spec_text)  # fail early
        splits[d] = spec_text
    info = machine()
    started = time.perf_counter()
    libs: list[Library] = []
    unavailable: dict[str, str] = {}
    for n in names:
        lib = LIBRARIES[n]()
        err = lib.check()
        if err:
            unavailable[lib.name] = err
            log(f"{lib.name} cannot be imported, skipped: {err}")
        else:
            libs.append(lib)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)

    all_rows: list[Row] = []
    md: list[str] = []
    verdicts: list[str] = []
    for d in datasets:
        spec = DATASETS[d]
        log(f"{d}: loading ({spec.format} importer + validate_events)")
        events, load_info = load_events(spec)
        split_spec: SplitSpec = parse_split(splits[d])
        split = split_spec.apply(events)
        items = load_items(spec)
        test = prepare("test", split.train, split.test, split.name, items)
        vsplit = validation_split(split.train, split_spec)
        val = prepare("validation", vsplit.train, vsplit.test, vsplit.name, items)
        s, vs = test.stats, val.stats
        log(
            f"  split {split.name}: train {s['train_events']:,} events, {s['users']:,} users × "
            f"{s['items']:,} items; {s['evaluated_users']:,} users evaluated; validation "
            f"{vs['train_events']:,}/{vs['test_events']:,} events, {vs['evaluated_users']:,} users"
        )
        rows: list[Row] = []
        tunes: list[TuneLog] = []
        notes: list[str] = []
        t_dataset = time.perf_counter()
        for lib in libs:
            log(f"  {lib.name}")
            t_lib = time.perf_counter()
            r, t, n = bench_library(d, lib, test, val, args)
            rows += r
            tunes.append(t)
            notes += n
            log(f"  {lib.name} done in {time.perf_counter() - t_lib:.0f}s")
        all_rows += rows
        texts = verdict(rows, args.k, args.margin)
        verdicts.append(f"- **{d}** (`{split.name}`, {s['evaluated_users']:,} users evaluated):")
        verdicts += [f"  - {t}" for t in texts]
        print()
        print(f"== {d} ({split.name}) ==")
        print_table(rows, args.k)
        for t in texts:
            print(f"-> {t}")
        print()

        md += [f"## {d}", ""]
        why = spec.why if splits[d] == spec.split else "override of the default split"
        md += [
            f"Split `{split.name}` ({why}). Import: {load_info['read']:,} events read, "
            f"{load_info['rejected']} rejected. Train: {s['train_events']:,} events → "
            f"{s['users']:,} users × {s['items']:,} items, {s['nnz']:,} (user, item) pairs. "
            f"Test: {s['test_events']:,} events; **{s['evaluated_users']:,} users evaluated** "
            f"({s['truth_pairs']:,} held-out pairs not in their train history"
            + (
                f"; {s['cold_truth_items']:,} cold test items, never hittable"
                if s["cold_truth_items"]
                else ""
            )
            + f"). Validation (`{vsplit.name}` of the train part): {vs['train_events']:,} / "
            f"{vs['test_events']:,} events, {vs['evaluated_users']:,} users evaluated. "
            f"Dataset wall time {time.perf_counter() - t_dataset:.0f} s.",
            "",
            *table(rows, args.k),
            "",
            "Verdict (ndcg@k on test):",
            "",
            *(f"- {t}" for t in texts),
            "",
            "Tuning on validation (ndcg@k at each family's defaults → best family → its grid):",
            "",
        ]
        for t in tunes:
            fam = ", ".join(f"{f} {v:.4f}" for f, v, _ in t.family_defaults) or "none"
            tried = "; ".join(f"{short_params(o)} {v:.4f}" for o, v, _ in t.tried)
            picked = short_params(t.picked) if t.picked is not None else "-"
            md.append(
                f"- {t.library}: defaults {fam} → best family **{t.best_family}**; "
                f"{len(t.tried)} config(s): {tried} → picked {picked}"
                + (f" ({t.stopped})" if t.stopped else "")
            )
        if notes:
            md += ["", "Notes:", "", *(f"- {n}" for n in notes)]
        md.append("")

    total = time.perf_counter() - started
    print("== all datasets ==")
    print_table(all_rows, args.k)
    print()
    for v in verdicts:
        print(v)
    log(f"done in {total:.0f}s")

    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                [{k: v for k, v in r.__dict__.items() if k != "per_user"} for r in all_rows],
                indent=1,
                default=str,
            )
            + "\n"
        )
    if args.per_user is not None:
        args.per_user.parent.mkdir(parents=True, exist_ok=True)
        np.savez(
            args.per_user,
            **{
                f"{i:03d}|{r.dataset}|{r.library}|{r.model}|{_cfg(r)}": r.per_user
                for i, r in enumerate(all_rows)
                if r.per_user is not None
            },
        )
    if args.out is not None:
        v = versions(libs)
        header = [
            "# recsmith vs peers: implicit, RecTools, LensKit",
            "",
            f"Generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `benchmarks/peers.py` in "
            f"{total:.0f} s.",
            "",
            "```",
            command(),
            "```",
            "",
            f"- Machine: {info['nproc']} CPUs (nproc), {info['cpu']}, {info['memory']} RAM; "
            f"{info['os']}; Python {info['python']}. Load average (1 min) at start "
            f"{info['load']}, at end {os.getloadavg()[0]:.2f} (shared machine: fit seconds are "
            f"indicative). Threads: every library at its default (all cores); {thread_info()}.",
            "- Versions: " + ", ".join(f"{n} {x}" for n, x in v.items()) + ".",
            *(f"- **{n} not run**: {e}" for n, e in unavailable.items()),
            "- Protocol: recsmith importer + `validate_events` → one split per dataset "
            "(`parse_split`) → `Interactions.from_events(train, EventSettings().weights)` "
            "(rating = stars, play = log(1+plays), view = 1) → every library trains on that "
            "same matrix, recommends top-k for `ground_truth(...).user_ids` with seen train "
            "items excluded, and is scored by recsmith's `compute_metrics` / "
            "`catalog_coverage` against the same truth. recsmith rows: `evaluate_model` "
            "(short lists filled with popular items, as served); peer lists are scored as "
            "returned (short lists are noted, not filled).",
            f"- Tuning (equal budget): validation = the same rule applied to the train part; "
            f"each tunable family at its library defaults on validation, the best family by "
            f"validation ndcg@{args.k} gets a grid of ≤ {args.max_configs} configs (defaults "
            f"counted, listed order, stopped after {args.tune_budget:.0f} s of grid fits); the "
            f"pick is refit on the full train part and reported as `tuned`. Every other row is "
            f"the library's defaults. Dense item×item models are skipped above "
            f"{args.dense_max_items:,} train items.",
            "",
            "## Verdicts: does recsmith's best model beat the best peer by "
            f"≥ {args.margin:.0%} ndcg@{args.k}?",
            "",
            *verdicts,
            "",
        ]
        text = "\n".join(header + md) + "\n"
        if args.out.exists():
            old = args.out.read_text()
            if ANALYSIS_MARK in old:
                text += "\n" + ANALYSIS_MARK + old.split(ANALYSIS_MARK, 1)[1]
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
