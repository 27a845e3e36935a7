"""Spark training (``train --engine spark``) against the in-process path (issue #18).

Two parts, each engine run in its own process so that time and peak memory are its own:

1. ``parity``: MovieLens 100K (read with recsmith's ``movielens`` importer and
   ``validate_events``), leave-last-out split; iALS at the default settings trained in-process
   (implicit) and on Spark (MLlib ALS) over several seeds, NDCG@10 of each on the held-out
   items; item-kNN lists of every user compared one by one.
2. ``scale``: one simulated shop's log of N events as Parquet shards of ~1M events, written one
   shard at a time (never the whole log in memory; each size's log is a prefix of the next);
   for each engine and model, wall time (reading included; Spark's JVM start reported apart)
   and the peak resident memory of the whole process tree (the Python driver plus, for Spark,
   its JVM), sampled every 0.2 s; a run past ``--timeout-min`` is killed and reported so.
   ``fit`` (also printed after ``scale``) fits seconds and memory against events per engine.

    PYTHONPATH=src python benchmarks/spark_train.py parity --seeds 3
    PYTHONPATH=src python benchmarks/spark_train.py scale --sizes 5M,10M,20M --models popular \
        --timeout-min 20 --data /tmp/shards --out /tmp/spark-scale.jsonl
    PYTHONPATH=src python benchmarks/spark_train.py fit /tmp/spark-scale.jsonl

``local[2]`` on this 2-core machine is Spark at its least favourable: one JVM doing what numpy
does in one process, plus shuffles. The figures say what the engine costs here and how each
path grows; a cluster's executors divide the Spark side, not the in-process one.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
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


def tree_usage(pid: int) -> dict[int, tuple[int, float]]:
    """Resident bytes and CPU seconds (user + system) of ``pid`` and each of its descendants,
    by pid (from /proc)."""
    children: dict[int, list[int]] = {}
    usage: dict[int, tuple[int, float]] = {}
    page, tick = os.sysconf("SC_PAGE_SIZE"), os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            statm = Path(f"/proc/{entry}/statm").read_text().split()
        except OSError:
            continue
        children.setdefault(int(stat[1]), []).append(int(entry))
        usage[int(entry)] = (int(statm[1]) * page, (int(stat[11]) + int(stat[12])) / tick)
    tree, todo = {}, [pid]
    while todo:
        p = todo.pop()
        if p in usage:
            tree[p] = usage[p]
        todo.extend(children.get(p, []))
    return tree


def measured(
    engine: str, model: str, parquet: Path, params: dict[str, object], timeout_s: float
) -> dict[str, object]:
    """``run_one`` in a child process (its own process group, so a run past ``timeout_s`` is
    killed with its JVM), the tree's peak RSS sampled every 0.2 s meanwhile, and its CPU seconds
    (each process's last sample: what ran on the cores, whatever else the machine ran)."""
    cmd = [sys.executable, __file__, "one", engine, model, str(parquet), json.dumps(params)]
    env = os.environ | {"OPENBLAS_NUM_THREADS": "1"}  # implicit's advice, for the child only
    started = time.perf_counter()
    child = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
        start_new_session=True,
    )
    peak = 0
    cpu: dict[int, float] = {}
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            tree = tree_usage(child.pid)
            peak = max(peak, sum(rss for rss, _ in tree.values()))
            cpu.update((p, seconds) for p, (_, seconds) in tree.items())
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        out, _ = child.communicate(timeout=timeout_s)
        status = "ok" if child.returncode == 0 else f"exit {child.returncode}"
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        out, _ = child.communicate()
        status = "timeout"
    done.set()
    sampler.join()
    phases = json.loads(out.strip().splitlines()[-1]) if status == "ok" else {}
    return {
        "engine": engine,
        "model": model,
        "status": status,
        "wall_s": round(time.perf_counter() - started, 1),
        **{k: round(v, 1) if isinstance(v, float) else v for k, v in phases.items()},
        "peak_rss_gib": round(peak / 2**30, 2),
        "cpu_s": round(sum(cpu.values()), 1),
    }


# ---- scale -----------------------------------------------------------------------------------

#: One shard of the simulated log: ~1.02M events (~37.6 per user) over the shop's 20,000 items.
SHARD_USERS = 27_200
N_ITEMS = 20_000
#: Shards simulated apart; the others repeat one of them with new customer and session ids.
#: Simulating costs O(users x items) (~25 CPU-s a shard here): 18 shards for 20M events would take
#: longer than the runs they feed, while 4 give every size the same mix of distinct behaviour.
SIMULATED_SHARDS = 4


def event_count(text: str) -> int:
    """``5M``, ``500k`` or ``20000000`` as a number of events."""
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:].lower(), 1)
    return int(float(text[:-1] if scale > 1 else text) * scale)


def simulated_shard(root: Path, seed: int) -> Path:
    """Customers ``seed`` of one simulated shop (one catalogue: the simulator's ``user_seed``),
    validated, as Parquet; reused when already written (it would be the same)."""
    from recsmith.config import EventSettings
    from recsmith.events.validate import validate_events
    from recsmith.simulate import simulate

    path = root / f"simulated-{seed}.parquet"
    if not path.exists():
        sim = simulate(n_users=SHARD_USERS, n_items=N_ITEMS, seed=7, user_seed=seed)
        valid, rejected = validate_events(sim.events, EventSettings())
        assert not rejected, rejected[:3]
        valid[COLUMNS].to_parquet(path.with_suffix(".tmp"), index=False)
        path.with_suffix(".tmp").rename(path)
    return path


def write_shard(root: Path, shard: int) -> Path:
    """Shard ``shard`` of the log: simulated shard ``shard % SIMULATED_SHARDS`` with its user and
    session ids prefixed by ``p{shard}-`` (new customers), one Parquet file."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    path = root / f"part-{shard:05d}.parquet"
    if not path.exists():
        table = pq.read_table(simulated_shard(root, shard % SIMULATED_SHARDS))
        for column in ("user_id", "session_id"):
            kind = table[column].type
            prefix, empty = pa.scalar(f"p{shard}-", kind), pa.scalar("", kind)
            renamed = pc.binary_join_element_wise(prefix, table[column], empty)
            table = table.set_column(table.schema.get_field_index(column), column, renamed)
        pq.write_table(table, path.with_suffix(".tmp"))
        path.with_suffix(".tmp").rename(path)
    return path


def shop_parquet(n_events: int, shards: Path, root: Path) -> tuple[Path, int]:
    """A directory of the first shards that hold at least ``n_events`` events (hard links, so
    the shards are written once for every size), and the events it holds. Every log is a prefix
    of the larger ones: one shop growing, not a new shop per size."""
    import pyarrow.parquet as pq

    path = root / f"events-{n_events}"
    path.mkdir(exist_ok=True)
    total, shard = 0, 0
    while total < n_events:
        part = write_shard(shards, shard)
        if not (path / part.name).exists():
            os.link(part, path / part.name)
        total += pq.ParquetFile(part).metadata.num_rows
        shard += 1
    return path, total


def fit_scaling(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """Per engine and model, over the sizes that finished: seconds = a + b · M events (least
    squares; ``a`` is what a run costs whatever its size), the log-log slope of seconds against
    events (1: linear), peak GiB = c + d · M events, and CPU seconds per M events (the slope:
    core-seconds, which the load of other processes does not inflate as it does wall time)."""
    frame = pd.DataFrame([r for r in rows if r["status"] == "ok"])
    out = []
    for (engine, model), group in frame.groupby(["engine", "model"], sort=False):
        if group["events"].nunique() < 2:
            continue
        m = group["events"].to_numpy(float) / 1e6
        seconds, gib = group["wall_s"].to_numpy(float), group["peak_rss_gib"].to_numpy(float)
        b, a = np.polyfit(m, seconds, 1)
        d, c = np.polyfit(m, gib, 1)
        slope = np.polyfit(np.log(m), np.log(seconds), 1)[0]
        out.append(
            {
                "engine": engine,
                "model": model,
                "sizes": len(group),
                "fixed_s": round(a, 1),
                "s_per_M": round(b, 2),
                "loglog_slope": round(slope, 2),
                "base_gib": round(c, 2),
                "gib_per_M": round(d, 3),
            }
        )
        if "cpu_s" in group and group["cpu_s"].notna().all():  # rows written before cpu_s lack it
            out[-1]["cpu_s_per_M"] = round(np.polyfit(m, group["cpu_s"].to_numpy(float), 1)[0], 2)
    return out


def scale(
    sizes: list[int],
    models: list[str],
    engines: list[str],
    timeout_s: float,
    data: Path | None,
    out: Path | None,
) -> None:
    """Each size's log, then per model each engine in turn (interleaved, so load drifts hit
    both); a row per run to ``out`` as it finishes (JSON lines), the table and the fit at the
    end. Shards stay in ``data`` when given (a later run reuses them)."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="spark-bench-") as tmp:
        shards = data or Path(tmp)
        shards.mkdir(parents=True, exist_ok=True)
        for size in sizes:
            log(f"writing the log of {size:,} events")
            parquet, n_events = shop_parquet(size, shards, Path(tmp))
            for model in models:
                for engine in engines:
                    log(f"{n_events:,} events: {model} {engine}")
                    row = {
                        "events": n_events,
                        **measured(engine, model, parquet, {}, timeout_s),
                        "loadavg_1m": round(os.getloadavg()[0], 1),
                    }
                    log(json.dumps(row))
                    rows.append(row)
                    if out is not None:
                        with out.open("a") as f:
                            f.write(json.dumps(row) + "\n")
    print(pd.DataFrame(rows).to_string(index=False))
    if fits := fit_scaling(rows):
        print(pd.DataFrame(fits).to_string(index=False))


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
    truth = ground_truth(local, split.test, weights)
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
    s.add_argument("--sizes", default="5M,10M,20M", help="event counts (5M, 500k, 20000000)")
    s.add_argument("--models", default="popular")
    s.add_argument("--engines", default="in-process,spark")
    s.add_argument("--timeout-min", type=float, default=30.0, help="per run; killed past it")
    s.add_argument("--data", type=Path, help="keep the simulated shards here (reused)")
    s.add_argument("--out", type=Path, help="append each run's row here (JSON lines)")
    f = sub.add_parser("fit")
    f.add_argument("rows", type=Path, nargs="+", help="JSON lines written by scale --out")
    one = sub.add_parser("one")  # internal: one measured run
    one.add_argument("engine")
    one.add_argument("model")
    one.add_argument("parquet")
    one.add_argument("params")
    args = parser.parse_args()
    if args.part == "one":
        print(json.dumps(run_one(args.engine, args.model, args.parquet, json.loads(args.params))))
        return 0
    if args.part == "fit":
        rows = [json.loads(line) for path in args.rows for line in path.read_text().splitlines()]
        print(pd.DataFrame(fit_scaling(rows)).to_string(index=False))
        return 0
    print(calibration_line(), flush=True)
    if args.part == "parity":
        parity(args.seeds)
    else:
        scale(
            [event_count(x) for x in args.sizes.split(",")],
            args.models.split(","),
            args.engines.split(","),
            args.timeout_min * 60,
            args.data,
            args.out,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
