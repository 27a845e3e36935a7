"""Pieces of a model's fit that several fits on the same data share, kept while a caller asks.

Calibration fits EASE on each validation past once per grid value (``pipeline/calibration.py``):
its rising factor, low-pass filter and Mult-DAE weights are applied to EASE's scores after the
solve, so every value of them refitted the same λ's inverse — the fit's dearest part (n³ in the
kept items) — and the two low-pass weights the same ARPACK factors. A ``SharedFits`` made for one
``Interactions`` and active around the fits on it (``sharing``) computes each piece once and hands
the same arrays to every later fit that asks for it by the same key: the pieces are deterministic
functions of the data and the key (the solve, ARPACK from a fixed start vector, the network from
its seed), so a fit that reuses one is the fit that would have computed it (tests compare them).

A piece is reused only for the very ``Interactions`` object the ``SharedFits`` was made for, and
only while ``sharing`` is active: a fit on any other data, or outside it, computes its own. The
kept arrays are read, never written, by the fits that share them. What is kept costs memory (an
EASE solve over 12k items: 576 MB in float32), so the caller drops the pieces no later fit needs
(``retain``): between its grid's tries calibration holds one solve per validation past, the kept
value's, and while a try runs its solve beside it (``calibration.AFTER_SOLVE``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from recsmith.features.interactions import Interactions

T = TypeVar("T")


class SharedFits:
    """Pieces computed for fits on ``data``, each by its key; which fit (``owner``) used which;
    and the CPU seconds the reuses saved (what those pieces cost when they were computed)."""

    def __init__(self, data: Interactions) -> None:
        self.data = data
        self._pieces: dict[Hashable, tuple[Any, float]] = {}
        self._used: dict[Hashable, set[Hashable]] = {}
        self.owner: Hashable = None
        self.saved_seconds = 0.0

    def piece(self, key: Hashable, make: Callable[[], T]) -> T:
        """The piece under ``key``: computed by ``make`` the first time, then the same object."""
        self._used.setdefault(self.owner, set()).add(key)
        if key in self._pieces:
            value, cost = self._pieces[key]
            self.saved_seconds += cost
            return value
        began = time.process_time()
        value = make()
        self._pieces[key] = (value, time.process_time() - began)
        return value

    def retain(self, *owners: Hashable) -> None:
        """Drop every piece none of ``owners``' fits used (none named: every piece)."""
        keep = set().union(*(self._used.get(o, set()) for o in owners))
        self._pieces = {k: v for k, v in self._pieces.items() if k in keep}

    def __len__(self) -> int:
        return len(self._pieces)


_ACTIVE: ContextVar[SharedFits | None] = ContextVar("shared_fits", default=None)


@contextmanager
def sharing(fits: SharedFits, owner: Hashable) -> Iterator[SharedFits]:
    """Fits inside share ``fits``' pieces (those on its data); what they use is ``owner``'s."""
    fits.owner = owner
    token = _ACTIVE.set(fits)
    try:
        yield fits
    finally:
        _ACTIVE.reset(token)
        fits.owner = None


def shared(data: Interactions, key: Hashable, make: Callable[[], T]) -> T:
    """``make()``, or the piece a ``sharing`` block keeps under ``key`` for this very ``data``."""
    fits = _ACTIVE.get()
    if fits is None or fits.data is not data:
        return make()
    return fits.piece(key, make)
