"""The ``feature_samples`` table, one place for both store backends (``{p}``: the driver's
placeholder).

One row per sampled candidate row: the release that computed it, when (µs), and its features as
little-endian float32 bytes in the order of that release's ``feature_profile`` names. Bytes, not a
column per feature: each release has its own feature list, and the monitor reads a release's rows
back as one matrix (``decode``) rather than row by row.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: A stored row: (release, sampled_at µs, float32 features as bytes).
SampleRow = tuple[str, int, bytes]

SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS feature_samples (id INTEGER PRIMARY KEY, release TEXT NOT NULL,
    sampled_at INTEGER NOT NULL, features BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS feature_samples_release ON feature_samples (release, sampled_at);
"""
POSTGRES_SCHEMA = """
CREATE TABLE IF NOT EXISTS feature_samples (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    release TEXT NOT NULL, sampled_at BIGINT NOT NULL, features BYTEA NOT NULL);
CREATE INDEX IF NOT EXISTS feature_samples_release ON feature_samples (release, sampled_at);
"""
INSERT_SQL = "INSERT INTO feature_samples (release, sampled_at, features) VALUES ({p}, {p}, {p})"
SELECT_SQL = "SELECT features FROM feature_samples WHERE release = {p} AND sampled_at >= {p}"
#: Retention: rows older than the cutoff, and all but the newest ``keep``.
TRIM_SQL = (
    "DELETE FROM feature_samples WHERE sampled_at < {p} OR id <= "
    "(SELECT id FROM feature_samples ORDER BY id DESC LIMIT 1 OFFSET {p})"
)


def encode(release: str, at_us: int, rows: np.ndarray) -> list[SampleRow]:
    """One stored row per row of ``rows`` [n, features]."""
    block = np.ascontiguousarray(rows, dtype="<f4")
    return [(release, at_us, row.tobytes()) for row in block]


def decode(blobs: Sequence[bytes], width: int) -> np.ndarray:
    """The rows of ``blobs`` that have ``width`` features, as float32 [n, width] (a row of
    another width belongs to a differently built release of the same name: left out)."""
    size = 4 * width
    same = [bytes(b) for b in blobs if len(b) == size]
    if not same or width == 0:
        return np.zeros((0, width), np.float32)
    return np.frombuffer(b"".join(same), dtype="<f4").reshape(len(same), width)
