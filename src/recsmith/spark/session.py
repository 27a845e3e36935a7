"""The SparkSession a training run uses: pyspark is optional, so importing it is checked here."""

from __future__ import annotations

from typing import TYPE_CHECKING

from recsmith.errors import MissingExtraError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

#: Shuffle partitions when the master is local: Spark's default (200) turns a small job into
#: 200 near-empty tasks per stage; a cluster's own configuration is left as it is.
LOCAL_SHUFFLE_PARTITIONS = 8


def spark_session(master: str | None = None, *, app_name: str = "recsmith-train") -> SparkSession:
    """The active session, or a new one on ``master`` (None: whatever ``spark-submit`` or the
    environment configured, else ``local[*]``). Arrow moves columns between the JVM and numpy
    instead of pickled rows."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise MissingExtraError("pyspark", "spark") from None
    builder = SparkSession.builder.appName(app_name)
    if master is not None:
        builder = builder.master(master)
    session = builder.config("spark.sql.execution.arrow.pyspark.enabled", "true").getOrCreate()
    if session.sparkContext.master.startswith("local") and master is not None:
        session.conf.set("spark.sql.shuffle.partitions", str(LOCAL_SHUFFLE_PARTITIONS))
    return session
