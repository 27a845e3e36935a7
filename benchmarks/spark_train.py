"""Spark training (``train --engine spark``) against the in-process path (issue #18).

Two parts, each engine run in its own process so that time and peak memory are its own:

1. ``parity``: MovieLens 100K (read with recsmith's ``movielens`` importer and
   ``validate_events``), leave-last-out split; iALS at the default settings trained in-process
   (implicit) and on Spark (MLlib ALS) over several seeds, NDCG@10 of each on the held-out
   items; item-kNN lists of every user compared one by one.
2. ``scale``: simulated shops of N million events written as Parquet; for each engine and model,
   wall time (reading included; Spark's JVM start reported apart) and the peak resident memory
   of the whole process tree (the Python driver plus, for Spark, its JVM), sampled every 0.2 s.

    PYTHONPATH=src python benchmarks/spark_train.py parity --seeds 3
    PYTHONPATH=src python benchmarks/spark_train.py scale --sizes 1,2,5 --models itemknn,ials

``local[2]`` on this 2-core machine is Spark at its least favourable: one JVM doing what numpy
does in one process, plus shuffles. The figures say what the engine costs here and how each
path grows; a cluster's executors divide the Spark side, not the in-process one.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
from calibration import calibration_line

DATA_ROOT = Path(os.environ.get("RECSMITH_DATASETS", Path(__file__).parents[2] / "shared/datasets"))
COLUMNS = ["user_id", "session_id", "item_id", "event_type", "value", "ts"]
SPARK_CONF = {
    "spark.sql.shuffle.partitions": "8",
    "spark.driver.memory": "4g",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def session(master: str = "local[2]"):  # type: ignore[no-untyped-def]
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master(master).appName("recsmith-bench")
    for key, value in SPARK_CONF.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


# ---- one engine run (a child process) --------------------------------------------------------


def run_one(engine: str, model: str, parquet: str, params: dict[str, object]) -> dict[str, float]:
    """Read, preprocess and fit ``model`` on ``parquet`` with one engine; seconds by phase."""
    from recsmith.bundle import ModelBundle
    from recsmith.config import EventSettings
    from recsmith.features.interactions import Interactions
    from recsmith.models.registry import create

    weights = EventSettings().weights
    started = time.perf_counter()
    if engine == "in-process":
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
        events = pd.read_parquet(parquet)
        read = time.perf_counter()
        bundle = ModelBundle.train(
            Interactions.from_events(events, weights), create(model, **params)
        )
        return {
            "start_s": 0.0,
            "read_s": read - started,
            "fit_s": time.perf_counter() - read,
            "nnz": bundle.manifest["n_interactions"],
        }
    from recsmith.spark.events import read_parquet
    from recsmith.spark.train import train_on_spark

    spark = session()
    up = time.perf_counter()
    events, _ = read_parquet(spark, parquet)
    bundle = train_on_spark(spark, events, create(model, **params), weights)
    done = time.perf_counter()
    spark.stop()
    return {
        "start_s": up - started,
        "read_s": 0.0,
        "fit_s": done - up,
        "nnz": bundle.manifest["n_interactions"],
    }


def tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            statm = Path(f"/proc/{entry}/statm").read_text().split()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
        rss[int(entry)] = int(statm[1]) * os.sysconf("SC_PAGE_SIZE")
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo.extend(children.get(p, []))
    return total


def measured(
    engine: str, model: str, parquet: Path, params: dict[str, object]
) -> dict[str, object]:
    """``run_one`` in a child process, its tree's peak RSS sampled meanwhile."""
    cmd = [sys.executable, __file__, "one", engine, model, str(parquet), json.dumps(params)]
    started = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, tree_rss(child.pid))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = child.communicate()
    done.set()
    sampler.join()
    if child.returncode != 0:
        raise RuntimeError(f"{engine} {model} failed (exit {child.returncode})")
    phases = json.loads(out.strip().splitlines()[-1])
    return {
        "engine": engine,
        "model": model,
        "wall_s": round(time.perf_counter() - started, 1),
        **{k: round(v, 1) if isinstance(v, float) else v for k, v in phases.items()},
        "peak_rss_gib": round(peak / 2**30, 2),
    }


# ---- scale -----------------------------------------------------------------------------------


def shop_parquet(millions: float, root: Path) -> tuple[Path, int]:
    """A simulated shop of about ``millions`` × 1e6 events (33 per user; 20k items) as Parquet."""
    from recsmith.config import EventSettings
    from recsmith.events.validate import validate_events
    from recsmith.simulate import simulate

    path = root / f"events-{millions}M"
    n_users = int(millions * 1e6 / 33)
    sim = simulate(n_users=n_users, n_items=20_000, seed=7)
    path.mkdir()
    for part, chunk in enumerate(np.array_split(np.arange(len(sim.events)), 8)):
        valid, _ = validate_events(sim.events.iloc[chunk], EventSettings())
        valid[COLUMNS].to_parquet(path / f"part-{part}.parquet", index=False)
    return path, len(sim.events)


def scale(sizes: list[float], models: list[str], engines: list[str]) -> None:
    rows = []
    with tempfile.TemporaryDirectory(prefix="spark-bench-") as tmp:
        for size in sizes:
            log(f"simulating {size}M events")
            parquet, n_events = shop_parquet(size, Path(tmp))
            for model in models:
                for engine in engines:
                    log(f"{size}M {model} {engine}")
                    row = {"events": n_events, **measured(engine, model, parquet, {})}
                    log(json.dumps(row))
                    rows.append(row)
    print(pd.DataFrame(rows).to_string(index=False))


# ---- parity ----------------------------------------------------------------------------------


def movielens() -> pd.DataFrame:
    from recsmith.config import EventSettings
    from recsmith.events.importers.base import read_source
    from recsmith.events.validate import validate_events

    frames = [
        validate_events(chunk.rows, EventSettings(), offset=chunk.offset)[0]
        for chunk in read_source("movielens", DATA_ROOT / "movielens-100k").events
    ]
    return pd.concat(frames, ignore_index=True)


def parity(seeds: int) -> None:
    from recsmith.bundle import ModelBundle
    from recsmith.config import EventSettings
    from recsmith.evaluation.metrics import ndcg_at_k
    from recsmith.evaluation.runner import ground_truth
    from recsmith.evaluation.split import leave_last_out
    from recsmith.features.interactions import Interactions
    from recsmith.models.registry import create
    from recsmith.spark.events import from_frame
    from recsmith.spark.train import train_on_spark

    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    weights = EventSettings().weights
    split = leave_last_out(movielens())
    local = Interactions.from_events(split.train, weights)
    truth = ground_truth(local, split.test)
    spark = session()
    train = from_frame(spark, split.train).cache()

    def ndcg(bundle: ModelBundle) -> float:
        return float(ndcg_at_k(bundle.top_k(truth.user_ids, 10)[0].ids, truth.matrix, 10).mean())

    rows = []
    for seed in range(seeds):
        a = ndcg(ModelBundle.train(local, create("ials", random_state=seed)))
        b = ndcg(train_on_spark(spark, train, create("ials", random_state=seed), weights))
        rows.append({"seed": seed, "in_process": round(a, 4), "spark": round(b, 4)})
        log(json.dumps(rows[-1]))
    if rows:
        table = pd.DataFrame(rows)
        print(table.to_string(index=False))
        a, b = table["in_process"], table["spark"]
        print(
            f"iALS NDCG@10 mean ± sd: in-process {a.mean():.4f} ± {a.std():.4f}, "
            f"Spark {b.mean():.4f} ± {b.std():.4f}, Spark/in-process {b.mean() / a.mean():.3f}"
        )
    users = local.users.external_ids
    knn_local = ModelBundle.train(local, create("itemknn")).recommend(users, 10).item_ids
    knn_spark = (
        train_on_spark(spark, train, create("itemknn"), weights).recommend(users, 10).item_ids
    )
    same = sum(np.array_equal(x, y) for x, y in zip(knn_local, knn_spark, strict=True))
    print(f"item-kNN top-10 lists identical: {same} of {len(users)} users")
    spark.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="part", required=True)
    p = sub.add_parser("parity")
    p.add_argument("--seeds", type=int, default=3)
    s = sub.add_parser("scale")
    s.add_argument("--sizes", default="1,2,5", help="millions of events, comma-separated")
    s.add_argument("--models", default="itemknn,ials")
    s.add_argument("--engines", default="in-process,spark")
    one = sub.add_parser("one")  # internal: one measured run
    one.add_argument("engine")
    one.add_argument("model")
    one.add_argument("parquet")
    one.add_argument("params")
    args = parser.parse_args()
    if args.part == "one":
        print(json.dumps(run_one(args.engine, args.model, args.parquet, json.loads(args.params))))
        return 0
    print(calibration_line(), flush=True)
    if args.part == "parity":
        parity(args.seeds)
    else:
        scale(
            [float(x) for x in args.sizes.split(",")],
            args.models.split(","),
            args.engines.split(","),
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
