"""A Spark result on the driver as numpy columns, read from Arrow record batches.

What the driver keeps of a Spark fit is numpy arrays (pair indices and weights, ids, factors),
never a pandas frame: ``DataFrame.toPandas`` converts each column through pandas' per-type
converters and turns a list column (MLlib's factors) into an object array of arrays, one Python
object per row. ``DataFrame.toArrow`` (pyspark 4, the extra's floor) hands over the JVM's Arrow
batches; a list column of equal-length lists is then one reshape of its flat values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


def collect_columns(df: DataFrame) -> dict[str, np.ndarray]:
    """Every column of ``df`` as a numpy array, in the frame's row order: numbers as their
    numpy type (float with NaN where an integer column has nulls), strings as objects (None for
    null), a column of equal-length lists as a 2-D array [rows, length]."""
    table = df.toArrow()
    return {name: _numpy(name, table.column(name)) for name in table.column_names}


def _numpy(name: str, column: pa.ChunkedArray) -> np.ndarray:
    if not (pa.types.is_list(column.type) or pa.types.is_large_list(column.type)):
        return column.to_numpy()
    lists = column.combine_chunks()
    if lists.null_count:
        raise ValueError(f"{name}: a null list cannot be a row of a 2-D array")
    lengths = pc.list_value_length(lists).to_numpy()
    width = int(lengths[0]) if len(lengths) else 0
    if (lengths != width).any():
        raise ValueError(f"{name}: lists of unequal length cannot be a 2-D array")
    return lists.flatten().to_numpy(zero_copy_only=False).reshape(len(lists), width)
