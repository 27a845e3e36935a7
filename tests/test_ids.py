"""IdMap keeps ids as exact strings and maps them vectorised."""

import numpy as np
import pytest

from recsmith.ids import IdMap


def test_round_trip_keeps_leading_zeros_and_unknowns_are_minus_one() -> None:
    ids, codes = IdMap.from_values(["0739079891", "42", "0739079891", "é-ü"])
    np.testing.assert_array_equal(codes, [0, 1, 0, 2])
    np.testing.assert_array_equal(ids.to_index(["42", "nope", "0739079891"]), [1, -1, 0])
    assert list(ids.to_external(np.array([0, 2]))) == ["0739079891", "é-ü"]
    again = IdMap(ids.to_array().astype(object))
    assert again == ids and again.to_external(np.array([0]))[0] == "0739079891"


def test_duplicates_are_refused() -> None:
    with pytest.raises(ValueError, match="unique"):
        IdMap(["a", "a"])
