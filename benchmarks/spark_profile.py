"""Where ``train --engine spark`` spends its time: every Spark action it triggers (``count``,
``toPandas``, ``toArrow``, ``collect``), timed, with the recsmith line that asked for it.

Each action is a Spark job (or a few): a full pass over the log shows up as a slow one, so the
list says which step to cut (BENCHMARKS §46). Same session settings as ``spark_train.py``.

    PYTHONPATH=src python benchmarks/spark_profile.py /tmp/shards-2M --model popular
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from calibration import calibration_line
from spark_train import session

ACTIONS = ("count", "toPandas", "toArrow", "collect")


def timing(actions: list[tuple[str, float, str]]) -> None:
    """Wrap each action of pyspark's DataFrame so that it appends (name, seconds, caller)."""
    from pyspark.sql.classic.dataframe import DataFrame

    def timed(name: str, action: Callable[..., Any]) -> Callable[..., Any]:
        def run(self: DataFrame, *args: Any, **kwargs: Any) -> Any:
            caller = " < ".join(
                f"{Path(f.filename).name}:{f.lineno} {f.name}"
                for f in reversed(traceback.extract_stack()[:-1])
                if "/recsmith/" in f.filename
            )
            started = time.perf_counter()
            try:
                return action(self, *args, **kwargs)
            finally:
                actions.append((name, time.perf_counter() - started, caller))

        return run

    for name in ACTIONS:
        setattr(DataFrame, name, timed(name, getattr(DataFrame, name)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("parquet", help="a Parquet file or directory of events")
    parser.add_argument("--model", default="popular")
    args = parser.parse_args()
    print(calibration_line(), flush=True)
    from recsmith.config import EventSettings
    from recsmith.models.registry import create
    from recsmith.spark.events import read_parquet
    from recsmith.spark.train import train_on_spark

    actions: list[tuple[str, float, str]] = []
    timing(actions)
    started = time.perf_counter()
    spark = session()
    up = time.perf_counter()
    events, skipped = read_parquet(spark, args.parquet)
    bundle = train_on_spark(spark, events, create(args.model), EventSettings().weights)
    done = time.perf_counter()
    spark.stop()
    for name, seconds, caller in actions:
        print(f"{seconds:7.1f} s  {name:9} {caller}")
    print(
        f"JVM start {up - started:.1f} s, read + fit {done - up:.1f} s, of which actions "
        f"{sum(s for _, s, _ in actions):.1f} s; {bundle.manifest['n_interactions']:,} pairs, "
        f"{skipped} rows skipped"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
