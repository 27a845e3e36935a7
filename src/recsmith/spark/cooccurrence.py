"""Co-occurrence (``models.cooccurrence``) on Spark SQL: baskets are sessions, or an actor's UTC
day for events without one; a pair counts once per basket that holds both items."""

from __future__ import annotations

from pyspark.sql import functions as F

from recsmith.features.interactions import MICROS_PER_DAY, binarize
from recsmith.models.base import sparse_to_arrays
from recsmith.models.cooccurrence import Cooccurrence
from recsmith.spark.collect import collect_columns
from recsmith.spark.interactions import SparkInteractions, as_float, to_csr
from recsmith.spark.neighbours import top_per_row


def fit_cooccurrence(data: SparkInteractions, model: Cooccurrence) -> Cooccurrence:
    config = model.config
    basket = F.when(
        F.col("session_id").isNull(),
        F.concat_ws(":", F.lit("a"), F.col("u"), F.expr(f"ts div {MICROS_PER_DAY}")),
    ).otherwise(F.concat(F.lit("s:"), F.col("session_id")))
    held = data.events.select(basket.alias("basket"), "i").distinct().cache()
    n_baskets = held.select("basket").distinct().count()
    counts = held.groupBy("i").agg(F.count(F.lit(1)).cast("double").alias("n"))
    a, b = held.alias("a"), held.alias("b")
    together = (
        a.join(b, (F.col("a.basket") == F.col("b.basket")) & (F.col("a.i") != F.col("b.i")))
        .groupBy(F.col("a.i").alias("i"), F.col("b.i").alias("j"))
        .agg(F.count(F.lit(1)).cast("double").alias("co"))
        .filter(F.col("co") >= config.min_support)
        .join(counts.withColumnRenamed("n", "n_i"), "i")
        .join(counts.select(F.col("i").alias("j"), F.col("n").alias("n_j")), "j")
    )
    if config.metric == "confidence":
        score = as_float(F.col("co") / F.col("n_i"))
    else:  # float32 as numpy: fl(co · N) / fl(n_i · n_j)
        score = as_float(
            as_float(F.col("co") * float(n_baskets)).cast("double")
            / as_float(F.col("n_i") * F.col("n_j")).cast("double")
        )
    association = to_csr(
        collect_columns(
            top_per_row(
                together.withColumn("score", score), "i", "j", "score", config.neighbors
            ).select("i", "j", "score")
        ),
        "i",
        "j",
        "score",
        (data.n_items, data.n_items),
    )
    held.unpersist()
    return Cooccurrence.from_arrays(
        config,
        sparse_to_arrays("association_", association)
        | sparse_to_arrays("user_items_", binarize(data.matrix)),
    )
