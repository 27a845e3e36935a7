"""PSI and Jensen–Shannon against hand-computed values and scipy's own implementation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon

from recsmith.monitoring.divergence import jensen_shannon, psi


def test_psi_by_hand() -> None:
    # expected (0.5, 0.5), actual (0.25, 0.75):
    # (0.25-0.5)·ln(0.25/0.5) + (0.75-0.5)·ln(0.75/0.5) = 0.173287 + 0.101366
    assert psi(np.array([50, 50]), np.array([25, 75])) == pytest.approx(0.274653, abs=1e-6)


def test_psi_is_zero_for_the_same_shape_and_finite_with_empty_cells() -> None:
    assert psi(np.array([2, 6, 2]), np.array([10, 30, 10])) == pytest.approx(0.0, abs=1e-12)
    value = psi(np.array([10, 0]), np.array([0, 10]))
    assert math.isfinite(value) and value > 10  # disjoint: huge, never inf


@pytest.mark.parametrize(
    ("p", "q"), [([3, 1], [1, 3]), ([1, 2, 3], [3, 2, 1]), ([5, 5, 1], [1, 1, 9])]
)
def test_jensen_shannon_matches_scipy(p: list[int], q: list[int]) -> None:
    # scipy returns the distance, the square root of the divergence
    expected = jensenshannon(np.array(p, float), np.array(q, float), base=2) ** 2
    assert jensen_shannon(np.array(p), np.array(q)) == pytest.approx(expected, abs=1e-9)


def test_jensen_shannon_by_hand_and_bounds() -> None:
    # p=(.75,.25), q=(.25,.75), m=(.5,.5): .75·log2(1.5) + .25·log2(.5) = 0.188722
    assert jensen_shannon(np.array([3, 1]), np.array([1, 3])) == pytest.approx(0.188722, abs=1e-6)
    assert jensen_shannon(np.array([1, 0]), np.array([0, 1])) == pytest.approx(1.0, abs=2e-3)


def test_no_mass_is_an_error() -> None:
    with pytest.raises(ValueError, match="no mass"):
        psi(np.array([0, 0]), np.array([1, 1]))
