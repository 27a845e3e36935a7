"""``row_kernel.address``: where an array's first element is, read through the buffer protocol
for writable contiguous arrays and from ``__array_interface__`` for the others, the same address
either way (numpy's own ``ctypes.data`` is the oracle): an offset view, a read-only array, a
strided view, an empty one, and
ones whose dtype numpy exports no buffer of."""

from __future__ import annotations

import numpy as np

from recsmith.ranking.row_kernel import address


def test_address_is_numpys_for_every_kind_of_array() -> None:
    base = np.arange(40, dtype=np.int64)
    frozen = base.copy()
    frozen.flags.writeable = False
    arrays = [
        base,
        base[7:],  # an offset view: its own first element, not the buffer's
        base[7:].reshape(3, 11),
        frozen,
        base[::3],  # strided: not contiguous
        np.zeros(0, np.float32),
        np.asfortranarray(base.reshape(5, 8)),
        np.arange(4).astype("datetime64[us]"),  # writable, contiguous, no buffer exported
        np.array(["ab", "cde"]),  # fixed-width text, as ``IdTable.find`` passes it
    ]
    for array in arrays:
        assert address(array) == array.ctypes.data
    assert address(base[7:]) == base.ctypes.data + 7 * 8
