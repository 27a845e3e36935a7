"""Arrays a model derives from its fitted arrays once, not on every request.

A served model answers item lists (``/popular``, ``/trending``, ``/similar``) from the same
fitted arrays on every request, and what it derives from them (popularity's order, unit item
vectors) cost more than the answer itself on a 100k-item catalogue (issue #19). The derived array
is kept with the array it came from and made again when the model holds another one (a refit,
``from_arrays``): a model never answers from what an older fit derived.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np

_MAKING = threading.RLock()  # a make that derives in turn may take it again


def derived(
    owner: object, key: str, source: np.ndarray, make: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """``make(source)``, kept on ``owner`` under ``key`` while ``source`` is the same array.

    Fitted arrays are replaced, never written in place, so the identity of ``source`` says
    whether the kept value is still its. It is made under one lock, checked again inside: the
    first requests after a start or a hot swap come together, and each making its own copy
    (16 threads normalising 300k item vectors held 1.19 GiB at once) costs more than waiting."""
    kept = owner.__dict__.get(key)
    if kept is not None and kept[0] is source:
        return kept[1]
    with _MAKING:
        kept = owner.__dict__.get(key)
        if kept is None or kept[0] is not source:
            kept = (source, make(source))
            owner.__dict__[key] = kept
    return kept[1]
