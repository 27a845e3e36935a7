"""Records (JSON objects, dicts) as a frame of object columns, each value kept exactly as sent.

pandas would infer its string dtype for text columns, which is pyarrow and UTF-8: one lone
surrogate (``json.loads`` accepts ``"\\ud800"``) anywhere in a batch made building the frame
raise, so the whole batch failed before any record could be checked. Object columns (and an
object column index, for such a key) hold any Python value; validation names the bad ones per
record.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import chain
from typing import Any

import numpy as np
import pandas as pd


def object_column(values: Sequence[Any]) -> pd.Series:
    """A Series holding each value as is: lists stay lists, ints stay ints, text is not inferred."""
    return pd.Series(np.fromiter(values, dtype=object, count=len(values)), dtype=object)


def records_frame(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per record (even for ``{}``), one object column per key any record has."""
    keys = list(dict.fromkeys(chain.from_iterable(records)))
    frame = pd.DataFrame(
        {n: object_column([rec.get(k) for rec in records]) for n, k in enumerate(keys)},
        index=pd.RangeIndex(len(records)),
    )
    frame.columns = pd.Index(keys, dtype=object)  # set after: a dict's keys would be inferred
    return frame
