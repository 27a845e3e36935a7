"""``features.interactions`` on Spark: weights, clipping, decay, id maps and the summed matrix.

Every step mirrors the in-process one, down to where float32 rounding happens: a float32
operation of numpy is done here in double and cast to float, which gives the same bits (a double
holds the exact product or sum of two floats, so the one rounding to float is the same). Sums
over many events are the one place the engines may differ: numpy adds float32 in its order,
Spark adds doubles in another, so non-integer weights can differ in the last float32 bit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import sparse

from recsmith.config import Weight
from recsmith.features.interactions import (
    MAX_EVENT_WEIGHT,
    MICROS_PER_DAY,
    SESSION_PREFIX,
    warn_unusable,
)
from recsmith.ids import IdMap
from recsmith.monitoring.profile import profile_of
from recsmith.spark.collect import collect_columns

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession


@dataclass(frozen=True, slots=True, eq=False)
class SparkInteractions:
    """What the Spark fitters share: the id maps and matrix (on the driver, as in the artifact),
    and the indexed events and summed pairs (in Spark, cached)."""

    users: IdMap
    items: IdMap
    matrix: sparse.csr_array  # float32 [n_users, n_items], as ``Interactions.matrix``
    events: DataFrame  # usable events: u, i, ts, w (float, before decay), session_id
    pairs: DataFrame  # u, i, w (float): summed decayed weights, positive only
    reference_ts: int
    profile: dict[str, Any]  # ``monitoring.profile.data_profile`` of the events read

    @property
    def n_items(self) -> int:
        return len(self.items)


def as_float(column: Column) -> Column:
    """A double expression rounded to float32: one numpy float32 operation's result."""
    return column.cast("float")


def decay(ts: Column, reference_ts: int, half_life_days: float | None) -> Column:
    """``features.interactions.decay_factors`` as a column (1 without a half-life)."""
    from pyspark.sql import functions as F

    if half_life_days is None:
        return F.lit(1.0)
    age_days = (F.lit(reference_ts) - ts).cast("double") / MICROS_PER_DAY
    return F.pow(F.lit(0.5), F.greatest(age_days, F.lit(0.0)) / F.lit(float(half_life_days)))


def _raw_weight(weights: Mapping[str, Weight]) -> Column:
    """``features.interactions.event_weights``: a constant, the value, or log(1 + value); null
    where numpy would give NaN or inf (a missing value, log of a value at or below -1)."""
    from pyspark.sql import functions as F

    value = F.col("value")
    out = None
    for event_type, weight in weights.items():
        if weight == "value":
            w = value
        elif weight == "log_value":
            w = F.when(value > -1, F.log1p(value))
        else:
            w = F.lit(float(weight))
        out = (F if out is None else out).when(F.col("event_type") == event_type, w)
    assert out is not None  # the settings require at least one type
    return F.when(F.isnan(out) | (F.abs(out) == float("inf")), None).otherwise(out)


def build(
    spark: SparkSession,
    events: DataFrame,
    weights: Mapping[str, Weight],
    *,
    half_life_days: float | None,
    catalog_items: Sequence[str] = (),
) -> SparkInteractions:
    """``Interactions.from_events`` on Spark: the same id maps (first appearance in time order,
    catalogue-only items appended), the same weights and the same matrix."""
    from pyspark.sql import functions as F

    weighted = events.withColumn("raw_w", _raw_weight(weights))
    by_type = (
        weighted.groupBy("event_type")
        .agg(
            F.count(F.lit(1)).alias("n"),
            F.min("ts").alias("first"),
            F.max("ts").alias("last"),
            F.sum(F.col("raw_w").isNull().cast("long")).alias("dropped"),
            F.sum((F.abs("raw_w") > MAX_EVENT_WEIGHT).cast("long")).alias("over"),
            F.max(F.when(F.col("raw_w").isNotNull(), F.col("ts"))).alias("usable_last"),
        )
        .toPandas()
    )
    if by_type.empty:
        raise ValueError("events: no events to learn from")
    unknown = sorted(set(by_type["event_type"].astype(str)) - set(weights))
    if unknown:
        raise ValueError(f"event_type: no weight configured for {unknown} (events.weights)")
    warn_unusable(int(by_type["dropped"].sum()), int(by_type["over"].fillna(0).sum()))
    if by_type["usable_last"].isna().all():
        raise ValueError("events: no event with a finite weight to learn from")
    reference_ts = int(by_type["usable_last"].max())
    profile = profile_of(
        dict(zip(by_type["event_type"], by_type["n"].astype(int), strict=True)),
        int(by_type["first"].min()),
        int(by_type["last"].max()),
    )
    clipped = F.greatest(F.least("raw_w", F.lit(MAX_EVENT_WEIGHT)), F.lit(-MAX_EVENT_WEIGHT))
    usable = weighted.filter(F.col("raw_w").isNotNull()).select(
        F.coalesce("user_id", F.concat(F.lit(SESSION_PREFIX), "session_id")).alias("actor"),
        "item_id",
        "session_id",
        "ts",
        as_float(clipped).alias("w"),
    )
    users = _first_appearance(usable, "actor")
    items = _first_appearance(usable, "item_id", append=catalog_items)
    indexed = (
        usable.join(_codes(spark, users, "actor", "u"), "actor")
        .join(F.broadcast(_codes(spark, items, "item_id", "i")), "item_id")
        .select("u", "i", "ts", "w", "session_id")
        .cache()
    )
    decayed = as_float(F.col("w").cast("double") * decay(F.col("ts"), reference_ts, half_life_days))
    pairs = (
        indexed.groupBy("u", "i")
        .agg(as_float(F.sum(decayed.cast("double"))).alias("w"))
        .filter(F.col("w") > 0)
        .cache()
    )
    matrix = to_csr(collect_columns(pairs), "u", "i", "w", (len(users), len(items)))
    return SparkInteractions(users, items, matrix, indexed, pairs, reference_ts, profile)


def _first_appearance(events: DataFrame, column: str, append: Sequence[str] = ()) -> IdMap:
    """The distinct values of ``column`` in order of first appearance in the canonical event
    order (what ``IdMap.from_values`` gives in process on ``in_canonical_order``'s events), then
    ``append``'s new values.

    A value's first event is its earliest one, ties going to the first actor (for an item:
    distinct items differ before the event type or value could decide). That (time, actor) is
    found in Spark; the distinct values are sorted by it on the driver, which holds them all
    anyway: a Spark ``orderBy`` costs a sampling job and a range shuffle more. Spark compares
    strings by their UTF-8 bytes and Python by code points: the same order."""
    from pyspark.sql import functions as F

    first = events.groupBy(column).agg(F.min(F.struct("ts", "actor")).alias("first"))
    columns = collect_columns(
        first.select(column, F.col("first.ts").alias("ts"), F.col("first.actor").alias("by"))
    )
    ids = pd.DataFrame(columns).sort_values(["ts", "by", column])[column].to_numpy(dtype=object)
    if len(append):
        extra = pd.Index(np.asarray(append, dtype=object)).difference(pd.Index(ids), sort=False)
        ids = np.concatenate([ids, extra.to_numpy(dtype=object)])
    return IdMap(ids)


def _codes(spark: SparkSession, ids: IdMap, column: str, code: str) -> DataFrame:
    """``column`` → dense index, as a DataFrame to join the events with."""
    frame = pd.DataFrame({column: ids.external_ids, code: np.arange(len(ids), dtype=np.int32)})
    return spark.createDataFrame(frame, schema=f"{column} string, {code} int")


def to_array(columns: Mapping[str, np.ndarray], index: str, value: str, length: int) -> np.ndarray:
    """A float32 array of ``length`` with ``columns[value]`` at ``columns[index]`` (0 elsewhere)."""
    out = np.zeros(length, np.float32)
    out[np.asarray(columns[index], np.int64)] = np.asarray(columns[value], np.float32)
    return out


def to_csr(
    columns: Mapping[str, np.ndarray], rows: str, cols: str, value: str, shape: tuple[int, int]
) -> sparse.csr_array:
    """A float32 CSR matrix (canonical: sorted, no duplicates) from (row, col, value) columns
    collected from Spark (``collect_columns``)."""
    return sparse.csr_array(
        (
            np.asarray(columns[value], np.float32),
            (np.asarray(columns[rows], np.int32), np.asarray(columns[cols], np.int32)),
        ),
        shape=shape,
        dtype=np.float32,
    )
