"""Which variant a unit sees: a salted hash, so no state is shared or stored.

sha256(salt + ":" + unit) read as a number in [0, 1) picks the variant by cumulative weights.
Every worker and replica computes the same answer for the same unit (sticky without a lookup), a
new salt per experiment makes two experiments' assignments independent, and sha256 spreads any
id pattern (sequential ids, shared prefixes) uniformly, which Python's ``hash`` (randomised per
process) or a CRC would not.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np

from recsmith.experiments.spec import Experiment

_SCALE = float(2**53)


def bucket(unit: str, salt: str) -> float:
    """The unit's position in [0, 1): the first 53 bits of the hash (a float's mantissa)."""
    digest = hashlib.sha256(f"{salt}:{unit}".encode()).digest()
    return (int.from_bytes(digest[:8], "big") >> 11) / _SCALE


def assign(unit: str, experiment: Experiment) -> str:
    """The variant ``unit`` sees in ``experiment``."""
    point = np.array([bucket(unit, experiment.salt)])
    return experiment.variants[pick(point, _weights(experiment))[0]].name


def assign_many(units: Iterable[str], experiment: Experiment) -> np.ndarray:
    """Variant names for many units at once (for tests, reports and simulations)."""
    points = np.fromiter((bucket(u, experiment.salt) for u in units), dtype=float)
    names = np.array([v.name for v in experiment.variants], dtype=object)
    return names[pick(points, _weights(experiment))]


def pick(points: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The variant index each point in [0, 1) falls on, by cumulative ``weights`` (any scale)."""
    edges = np.cumsum(weights, dtype=float)
    edges /= edges[-1]
    return np.minimum(np.searchsorted(edges, points, side="right"), len(edges) - 1)


def _weights(experiment: Experiment) -> np.ndarray:
    return np.array([v.weight for v in experiment.variants], dtype=float)
