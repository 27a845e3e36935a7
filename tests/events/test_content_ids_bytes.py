"""Content event ids never change bytes: a file re-imported after an upgrade must deduplicate.

The oracle is the per-row implementation the column-wise one replaced, kept here verbatim, plus
digests written out from ``hashlib`` by hand."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pandas as pd

from recsmith.events.columns import float_texts
from recsmith.events.validate import content_event_ids


def _per_row(columns: dict[str, np.ndarray]) -> np.ndarray:
    """``content_event_ids`` as it was (commit 5127b46): one Python step per row."""

    def text(name: str) -> np.ndarray:
        values = np.asarray(columns[name], dtype=object)
        return np.where(pd.isna(values), "", values)

    parts = zip(
        text("user_id"),
        text("session_id"),
        np.asarray(columns["item_id"], dtype=object),
        np.asarray(columns["event_type"], dtype=object),
        np.asarray(columns["value"], dtype=np.float64),
        np.asarray(columns["ts"], dtype=np.int64),
        strict=True,
    )
    sep = "\x1f"
    return np.array(
        [
            hashlib.blake2b(
                sep.join((u, s, i, t, "" if math.isnan(v) else repr(float(v)), str(ts))).encode(),
                digest_size=16,
            ).hexdigest()
            for u, s, i, t, v, ts in parts
        ],
        dtype=object,
    )


#: values whose text is easy to get wrong: -0.0 (== 0.0), the smallest subnormal, 1e22 (repr
#: switches to exponent notation), a float with 17 significant digits, NaN (absent)
EDGE_VALUES = np.array([np.nan, 0.0, -0.0, 1.0, 0.1, 5e-324, 1e22, 1e16, -3.5, 0.1 + 0.2, 1 / 3])


def _columns(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    users = np.array([f"u{k}é€" for k in rng.integers(0, 1000, n)], dtype=object)
    sessions = np.array([f"s{k}" for k in rng.integers(0, 100, n)], dtype=object)
    random_values = rng.normal(size=n) * 10.0 ** rng.integers(-300, 300, n)
    return {
        "user_id": np.where(rng.random(n) < 0.1, None, users),
        "session_id": np.where(rng.random(n) < 0.5, None, sessions),
        "item_id": np.array([f"i{k}" for k in rng.integers(0, 1000, n)], dtype=object),
        "event_type": rng.choice(np.array(["view", "rating"], dtype=object), n),
        "value": np.where(rng.random(n) < 0.5, rng.choice(EDGE_VALUES, n), random_values),
        "ts": rng.integers(-(2**62), 2**62, n),
    }


def test_column_wise_ids_equal_the_per_row_ones_on_many_rows() -> None:
    columns = _columns(50_000, seed=7)
    columns["value"][: len(EDGE_VALUES)] = EDGE_VALUES  # each edge value at least once
    got = content_event_ids(columns)
    assert got.dtype == object and len(got) == 50_000
    assert (got == _per_row(columns)).all()
    assert len(content_event_ids({k: v[:0] for k, v in columns.items()})) == 0


def test_ids_equal_digests_written_out_by_hand() -> None:
    columns = {
        "user_id": np.array(["u1", None, "u2"], dtype=object),
        "session_id": np.array([None, "s1", None], dtype=object),
        "item_id": np.array(["i1", "i2", "i3"], dtype=object),
        "event_type": np.array(["view", "view", "rating"], dtype=object),
        "value": np.array([np.nan, np.nan, -0.0]),
        "ts": np.array([1_704_103_200_000_000, 1, 2], dtype=np.int64),
    }
    texts = [
        "u1\x1f\x1fi1\x1fview\x1f\x1f1704103200000000",
        "\x1fs1\x1fi2\x1fview\x1f\x1f1",
        "u2\x1f\x1fi3\x1frating\x1f-0.0\x1f2",
    ]
    expected = [hashlib.blake2b(t.encode(), digest_size=16).hexdigest() for t in texts]
    assert content_event_ids(columns).tolist() == expected


def test_float_texts_keep_negative_zero_apart_and_mark_nan() -> None:
    values = np.array([0.0, -0.0, np.nan, 0.1, 0.1, 1e22])
    assert float_texts(values) == ["0.0", "-0.0", "", "0.1", "0.1", "1e+22"]
    assert float_texts(values, "\\N")[2] == "\\N"
