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
from dataclasses import dataclass
from typing import Any

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


@dataclass(frozen=True, slots=True)
class Derivation:
    """One array a model derives from a fitted array for serving, named so that a release can
    carry it: ``derived`` keeps it on the model, and ``Recommender.save`` writes it as
    ``derived/<name>.npy`` beside the fitted arrays. A worker that loads the release maps that
    file, so every worker reads one copy in the page cache where each derived a private one
    (the unit item vectors of a 300k-item, 64-factor model: 73 MiB per worker, issue #19).
    ``source`` is read from the model each time: a refit replaces it, and the release's copy,
    kept with the array it was written from, is then made again like any derived value."""

    name: str
    source: Callable[[Any], np.ndarray]
    make: Callable[[np.ndarray], np.ndarray]

    @property
    def key(self) -> str:
        """Where ``derived`` keeps it on the model: out of the way of the fitted arrays."""
        return f"_{self.name}_of"

    def of(self, owner: object) -> np.ndarray:
        """The derived array of ``owner``'s current source (``derived``)."""
        return derived(owner, self.key, self.source(owner), self.make)

    def adopt(self, owner: object, value: np.ndarray) -> None:
        """Keep ``value`` (read from ``owner``'s release) as what ``of`` answers for the source
        ``owner`` holds now. Every derivation keeps its source's shape; a file of another
        shape belongs to no array of this model and is ignored (derived on demand, as a
        release without the file is)."""
        source = self.source(owner)
        if value.shape == source.shape:
            owner.__dict__[self.key] = (source, value)
