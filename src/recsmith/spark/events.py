"""Event logs as Spark DataFrames in the store's canonical columns.

Their row order does not matter: the in-process path numbers users and items in order of first
appearance in the canonical event order (time, actor, item: ``in_canonical_order``), and
``spark.interactions`` finds that order from the events alone, so files may be read in any order.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from recsmith.errors import ValidationError
from recsmith.events.importers.generic import default_event_type
from recsmith.ids import MAX_ID_LENGTH

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

#: The columns the engine works on, in this order.
COLUMNS = ("user_id", "session_id", "item_id", "event_type", "value", "ts")
#: A URL's scheme (``s3a:``, ``hdfs:``, ``file:``): such a location is Spark's to find.
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):/")
#: What an id may not contain (``recsmith.ids``: control characters and "/"), as a Java regex.
_FORBIDDEN_ID = "[\\x00-\\x1f\\x7f-\\x9f/]"


def data_location(data: Path) -> str:
    """``--data`` as Spark should read it: a command-line ``Path`` collapses the ``//`` of
    ``s3a://bucket/events``, which Hadoop would then read as a path on the default file system,
    so the slash is put back (``file:/x`` means the same as ``file:///x`` and stays)."""
    text = str(data)
    scheme = _SCHEME.match(text)
    if scheme is None or scheme.group(1) == "file" or text.startswith(f"{scheme.group(1)}://"):
        return text
    return text.replace(":/", "://", 1)


def from_frame(spark: SparkSession, events: pd.DataFrame) -> DataFrame:
    """A canonical pandas event frame (a store scan, already screened for privacy) as a Spark
    DataFrame. It is shipped from the driver through Arrow."""
    frame = events.loc[:, ["user_id", "session_id", "item_id", "event_type", "value", "ts"]]
    frame = frame.assign(
        value=frame["value"].astype(np.float64),
        ts=frame["ts"].astype(np.int64),
    )
    for column in ("user_id", "session_id", "item_id", "event_type"):
        frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    schema = (
        "user_id string, session_id string, item_id string, event_type string, value double, "
        "ts long"
    )
    return spark.createDataFrame(frame, schema=schema)


def read_parquet(spark: SparkSession, path: str) -> tuple[DataFrame, int]:
    """Events from a Parquet file or directory (local, ``hdfs://``, ``s3a://``…), and how many
    rows were skipped as invalid.

    The layout of ``--data`` files: ``item_id``, ``user_id`` and/or ``session_id``, a time as
    ``ts`` (Unix microseconds, the store's column) or ``timestamp`` (a Parquet timestamp), and
    optionally ``event_type`` and ``value``; without ``event_type`` every row is a ``rating``
    when there is a ``value`` column and a ``view`` otherwise, as for event files. A row without
    an item, an actor or a time, or with an id the id rule refuses, is skipped and counted.

    The valid rows come back persisted (memory, then local disk), read and validated once:
    training reads them several times (the per-type profile, two first-appearance orders, the
    indexing join), and re-reading the files re-ran the id rule's regular expressions on every
    pass (BENCHMARKS §46). The caller unpersists them when done."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F
    from pyspark.sql.types import TimestampNTZType, TimestampType

    if _SCHEME.match(path) is None and not Path(path).exists():
        raise ValidationError("--data", f"no such file or directory: {path}")
    raw = spark.read.parquet(path)
    names = set(raw.columns)
    time_column = "ts" if "ts" in names else "timestamp" if "timestamp" in names else None
    missing = [c for c in ("item_id",) if c not in names]
    if time_column is None:
        missing.append("ts (or timestamp)")
    if "user_id" not in names and "session_id" not in names:
        missing.append("user_id (or session_id)")
    if missing:
        raise ValidationError("--data", f"{path}: missing column(s) {', '.join(missing)}")
    if time_column == "timestamp":
        kind = raw.schema["timestamp"].dataType
        if not isinstance(kind, TimestampType | TimestampNTZType):
            raise ValidationError(
                "--data",
                f"{path}: column timestamp is {kind.simpleString()}, expected a Parquet "
                "timestamp (or give Unix microseconds as an integer column ts)",
            )
        ts = F.unix_micros(F.col("timestamp").cast("timestamp"))
    else:
        ts = F.col("ts").cast("long")

    def text(name: str) -> Column:
        return F.col(name).cast("string") if name in names else F.lit(None).cast("string")

    events = raw.select(
        text("user_id").alias("user_id"),
        text("session_id").alias("session_id"),
        text("item_id").alias("item_id"),
        (
            text("event_type")
            if "event_type" in names
            else F.lit(default_event_type("value" in names))
        ).alias("event_type"),
        (F.col("value").cast("double") if "value" in names else F.lit(None).cast("double")).alias(
            "value"
        ),
        ts.alias("ts"),
    )
    valid = (
        _valid_id(F.col("item_id"))
        & (_valid_id(F.col("user_id")) | (F.col("user_id").isNull() & _valid_id("session_id")))
        & (F.col("session_id").isNull() | _valid_id("session_id"))
        & F.col("ts").isNotNull()
        & F.col("event_type").isNotNull()
    )
    kept = events.filter(F.coalesce(valid, F.lit(False))).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        skipped = raw.count() - kept.count()  # Parquet's footers, then the one validating pass
    except BaseException:  # a corrupt file, Ctrl-C: the session may outlive this call
        kept.unpersist()
        raise
    return kept, int(skipped)


def _valid_id(column: Column | str) -> Column:
    """The id rule (``recsmith.ids.id_problem``) as a Spark expression: non-blank, no control
    characters or "/", at most ``MAX_ID_LENGTH`` characters."""
    from pyspark.sql import functions as F

    c = F.col(column) if isinstance(column, str) else column
    return (
        c.isNotNull()
        & (F.length(F.trim(c)) > 0)
        & ~c.rlike(_FORBIDDEN_ID)
        & (F.length(c) <= MAX_ID_LENGTH)
    )
