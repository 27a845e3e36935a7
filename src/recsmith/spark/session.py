"""The SparkSession a training run uses: pyspark is optional, so importing it is checked here."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from recsmith.errors import MissingExtraError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

#: Shuffle partitions for a ``local[...]`` master given on the command line: Spark's default
#: (200) turns a job on one machine into 200 near-empty tasks per stage. A cluster's (or
#: spark-submit's) own configuration is left as it is.
LOCAL_SHUFFLE_PARTITIONS = 8


@contextmanager
def spark_session(
    master: str | None = None, *, app_name: str = "recsmith-train"
) -> Iterator[SparkSession]:
    """The active session (a notebook's, a test's), or a new one on ``master`` (None: what
    ``spark-submit`` or the environment configured, else ``local[*]``), stopped on exit only if
    it was started here. Arrow moves columns between the JVM and numpy, not pickled rows."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise MissingExtraError("pyspark", "spark") from None
    active = SparkSession.getActiveSession()
    if active is not None:
        yield active
        return
    builder = SparkSession.builder.appName(app_name)
    if master is not None:
        builder = builder.master(master)
    session = builder.config("spark.sql.execution.arrow.pyspark.enabled", "true").getOrCreate()
    if master is not None and master.startswith("local"):
        session.conf.set("spark.sql.shuffle.partitions", str(LOCAL_SHUFFLE_PARTITIONS))
    try:
        yield session
    finally:
        session.stop()
