"""``recsmith train --engine spark``: events in (Parquet or a store), the usual artifact out."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from recsmith.bundle import ModelBundle
from recsmith.config import Weight
from recsmith.errors import ValidationError
from recsmith.models.base import Recommender
from recsmith.models.popularity import Popular, PopularConfig

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from recsmith.spark.interactions import SparkInteractions

#: Models Spark can fit; the others train in-process only.
SPARK_MODELS = ("cooccurrence", "ials", "itemknn", "popular", "trending")


def check_model(name: str) -> None:
    """A model Spark cannot fit is a usage error, said before any Spark job starts."""
    if name not in SPARK_MODELS:
        raise ValidationError(
            "--model",
            f"{name} does not train on Spark (--engine spark fits {', '.join(SPARK_MODELS)}); "
            "train it with the default --engine in-process",
        )


def _fitter(name: str) -> Callable[[SparkInteractions, Any], Recommender]:
    """The Spark fitter of a model (imported late: each pulls in pyspark)."""
    check_model(name)
    if name == "ials":
        from recsmith.spark.als import fit_als

        return fit_als
    if name == "itemknn":
        from recsmith.spark.neighbours import fit_itemknn

        return fit_itemknn
    if name == "cooccurrence":
        from recsmith.spark.cooccurrence import fit_cooccurrence

        return fit_cooccurrence
    from recsmith.spark.popular import fit_popular

    return fit_popular


def train_on_spark(
    spark: SparkSession,
    events: DataFrame,
    model: Recommender,
    weights: Mapping[str, Weight],
    *,
    half_life_days: float | None = None,
    catalog_items: Sequence[str] = (),
    **info: Any,
) -> ModelBundle:
    """Fit ``model`` (unfitted; its config says the settings) on ``events`` (canonical columns,
    ``spark.events``; the files and rows in any order) and bundle it with the popularity
    fallback exactly as ``ModelBundle.train`` does. ``info`` goes into the manifest."""
    from recsmith.features.interactions import with_touched
    from recsmith.spark.collect import collect_columns
    from recsmith.spark.interactions import build
    from recsmith.spark.popular import fit_popular

    fit = _fitter(model.name)
    started = datetime.now(UTC)
    data = build(spark, events, weights, half_life_days=half_life_days, catalog_items=catalog_items)
    try:
        fitted = fit(data, model)
        fallback = fit_popular(data, Popular(PopularConfig()))
        # every pair an event touched, a 0 or negative rating too: serving never lists it again
        touched = collect_columns(data.events.select("u", "i").distinct())
        seen = with_touched(data.matrix, touched["u"], touched["i"])
    finally:
        data.events.unpersist()
        data.pairs.unpersist()
    return ModelBundle.assemble(
        fitted,
        data.users,
        data.items,
        data.matrix,
        fallback,
        seen=seen,
        started=started,
        data_profile=data.profile,
        engine="spark",
        spark_master=spark.sparkContext.master,
        **info,
    )
