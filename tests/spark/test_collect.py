"""``collect_columns`` against ``DataFrame.collect()``'s rows read by plain Python as the oracle."""

import numpy as np
import pytest
from pyspark.sql import SparkSession

from recsmith.spark.collect import collect_columns

SCHEMA = "u int, w float, id string, n long, features array<float>"


def _rows(n: int) -> list[tuple]:
    return [
        (
            i * 7 % 50,
            i / 4,
            None if i % 9 == 0 else f"x{i}",
            2**40 + i,
            [float(i), -0.5 * i, 1.0],
        )
        for i in range(n)
    ]


def test_columns_equal_the_collected_rows_across_partitions(spark: SparkSession) -> None:
    frame = spark.createDataFrame(_rows(300), SCHEMA)  # 4 partitions: 4 Arrow batches
    rows = frame.collect()
    got = collect_columns(frame)
    assert list(got) == ["u", "w", "id", "n", "features"]
    assert got["u"].dtype == np.int32 and got["n"].dtype == np.int64
    assert got["u"].tolist() == [r.u for r in rows]
    assert got["w"].dtype == np.float32 and got["w"].tolist() == [r.w for r in rows]
    assert got["id"].tolist() == [r.id for r in rows]
    assert got["n"].tolist() == [r.n for r in rows]
    assert got["features"].shape == (300, 3)
    assert got["features"].tolist() == [r.features for r in rows]


def test_empty_frame_and_ragged_lists(spark: SparkSession) -> None:
    empty = collect_columns(spark.createDataFrame([], SCHEMA))
    assert [len(v) for v in empty.values()] == [0] * 5
    ragged = spark.createDataFrame([(1, [1.0, 2.0]), (2, [3.0])], "u int, features array<float>")
    with pytest.raises(ValueError, match="features: lists of unequal length"):
        collect_columns(ragged)
