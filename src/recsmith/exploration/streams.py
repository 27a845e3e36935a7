"""Per-request random numbers: reproducible from the request's id, drawn for a whole batch at once.

Why not one ``numpy.random.Generator`` per request: a batch of coalesced requests would need a
Python loop to build and draw from each, and a shared generator would make a request's draw depend
on which other requests happened to share its batch. Here every number is a counter-based hash
(SplitMix64) of ``(request seed, stream, counter)``: the same recommendation id gives the same
decision whatever batch it is answered in, a test can replay it, and a batch is one numpy
expression. Streams keep the uses apart (the ε coin, the pool draw, the Gumbel noise, the
Monte-Carlo propensities) so adding a draw to one never shifts another.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from enum import IntEnum

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


class Stream(IntEnum):
    """What a draw is for (each its own independent sequence per request)."""

    COIN = 1
    POOL = 2
    GUMBEL = 3
    PROPENSITY = 4
    BANK = 5
    ARM = 6


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser over uint64 (wrapping arithmetic is the point)."""
    z = x + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def seeds_of(request_ids: Sequence[str]) -> np.ndarray:
    """uint64 seed per request id (BLAKE2b of its text: any id, not only uuid hex, seeds well).
    One hash per request, microseconds for a batch."""
    return np.fromiter(
        (
            int.from_bytes(hashlib.blake2b(i.encode(), digest_size=8).digest(), "little")
            for i in request_ids
        ),
        dtype=np.uint64,
        count=len(request_ids),
    )


def uniforms(seeds: np.ndarray, stream: Stream, size: int) -> np.ndarray:
    """float64 [len(seeds), size] in [0, 1): row q is request q's ``size`` first draws of
    ``stream`` (53 random bits each)."""
    base = _mix(np.asarray(seeds, np.uint64) ^ _mix(np.uint64(int(stream)) * np.ones(1, np.uint64)))
    counter = np.arange(size, dtype=np.uint64) * _GOLDEN
    bits = _mix(base[:, None] + counter[None, :])
    return (bits >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def gumbels(seeds: np.ndarray, stream: Stream, size: int) -> np.ndarray:
    """Standard Gumbel noise [len(seeds), size] (``-log(-log(u))``, u kept off 0)."""
    u = uniforms(seeds, stream, size)
    return -np.log(-np.log(np.maximum(u, 1e-300)))
