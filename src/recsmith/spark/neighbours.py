"""Item-kNN (``models.itemknn``) on Spark SQL: shrunk cosine over the users two items share.

sim(i, j) = <x_i, x_j> / (|x_i| |x_j| + shrinkage), computed by a self-join of the user×item
pairs on the user, then each item's ``neighbors`` best by (similarity, lower index first): the
order ``sparse_top_k`` serves them in.
"""

from __future__ import annotations

import numpy as np
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from recsmith.features.interactions import binarize
from recsmith.models.base import sparse_to_arrays
from recsmith.models.itemknn import ItemKNN
from recsmith.spark.collect import collect_columns
from recsmith.spark.interactions import SparkInteractions, as_float, to_csr


def fit_itemknn(data: SparkInteractions, model: ItemKNN) -> ItemKNN:
    config = model.config
    x = data.pairs.select("u", "i", (F.lit(1.0) if config.binary else F.col("w")).alias("x"))
    x = x.withColumn("x", as_float(F.col("x")))
    similarity = to_csr(
        collect_columns(
            top_per_row(similarities(x, config.shrinkage), "i", "j", "sim", config.neighbors)
        ),
        "i",
        "j",
        "sim",
        (data.n_items, data.n_items),
    )
    user_items = binarize(data.matrix) if config.binary else data.matrix
    return ItemKNN.from_arrays(
        config,
        sparse_to_arrays("similarity_", similarity) | sparse_to_arrays("user_items_", user_items),
    )


def similarities(x: DataFrame, shrinkage: float) -> DataFrame:
    """(i, j, sim) for every pair of distinct items with a positive shrunk cosine; ``x`` holds
    (u, i, x) with x a float. The float32 steps of ``models.itemknn.neighbours`` are rounded the
    same way (see ``spark.interactions``)."""

    def f64(name: str) -> F.Column:
        return F.col(name).cast("double")

    norms = x.groupBy("i").agg(
        as_float(F.sqrt(as_float(F.sum(as_float(f64("x") * f64("x")))).cast("double"))).alias(
            "norm"
        )
    )
    a, b = x.alias("a"), x.alias("b")
    dots = (
        a.join(b, (F.col("a.u") == F.col("b.u")) & (F.col("a.i") != F.col("b.i")))
        .groupBy(F.col("a.i").alias("i"), F.col("b.i").alias("j"))
        .agg(as_float(F.sum(as_float(F.col("a.x").cast("double") * f64("b.x")))).alias("dot"))
    )
    ni = norms.withColumnRenamed("norm", "ni")
    nj = norms.select(F.col("i").alias("j"), F.col("norm").alias("nj"))
    denominator = as_float(f64("ni") * f64("nj"))
    denominator = as_float(denominator.cast("double") + float(np.float32(shrinkage)))
    denominator = as_float(denominator.cast("double") + float(np.float32(1e-12)))
    return (
        dots.join(ni, "i")
        .join(nj, "j")
        .select("i", "j", as_float(f64("dot") / denominator.cast("double")).alias("sim"))
        .filter(F.col("sim") > 0)
    )


def top_per_row(frame: DataFrame, row: str, col: str, value: str, k: int) -> DataFrame:
    """Each ``row``'s ``k`` best entries by ``value``, ties to the lower ``col``."""
    rank = F.row_number().over(Window.partitionBy(row).orderBy(F.desc(value), F.asc(col)))
    return frame.withColumn("_rank", rank).filter(F.col("_rank") <= k).drop("_rank")
