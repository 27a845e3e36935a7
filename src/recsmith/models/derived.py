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
    ``derived/<name>.v<version>.npy`` beside the fitted arrays. A worker that loads the release
    maps that file, so every worker reads one copy in the page cache where each derived a
    private one (the unit item vectors of a 300k-item, 64-factor model: 73 MiB per worker,
    issue #19).
    ``source`` is read from the model each time: a refit replaces it, and the release's copy,
    kept with the array it was written from, is then made again like any derived value."""

    name: str
    source: Callable[[Any], np.ndarray]
    make: Callable[[np.ndarray], np.ndarray]
    #: Raise it whenever ``make`` would give another array for the same source (another
    #: normalisation, another tie rule): it names the release's file (``file``), so a release
    #: written with an older ``make`` is derived afresh, never answered from.
    version: int = 1
    #: The derived array's shape from its source's (None: the same shape), for ``adopt``.
    shape: Callable[[tuple[int, ...]], tuple[int, ...]] | None = None
    #: Read only by ``similar_items`` (unit item vectors): a release writes it only for a model
    #: that answers ``/similar``. Popularity's order also ranks retrieval candidates: always.
    similar_only: bool = False

    @property
    def file(self) -> str:
        """The array's name in a release's ``derived/``: its name and version."""
        return f"{self.name}.v{self.version}"

    @property
    def key(self) -> str:
        """Where ``derived`` keeps it on the model: out of the way of the fitted arrays."""
        return f"_{self.name}_of"

    def of(self, owner: object) -> np.ndarray:
        """The derived array of ``owner``'s current source (``derived``)."""
        return derived(owner, self.key, self.source(owner), self.make)

    def adopt(self, owner: object, value: np.ndarray) -> None:
        """Keep ``value`` (read from ``owner``'s release) as what ``of`` answers for the source
        ``owner`` holds now. A file of another shape than ``make`` gives belongs to no array
        of this model and is ignored (derived on demand, as a release without the file is)."""
        source = self.source(owner)
        if value.shape == (source.shape if self.shape is None else self.shape(source.shape)):
            owner.__dict__[self.key] = (source, value)


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """``vectors`` scaled to unit length (cosine similarity as an inner product): normalising
    the whole catalogue costs more than one item's scores, so the models keep it (a
    ``Derivation``) rather than redoing it on every ``/similar`` request (issue #19)."""
    norms = np.linalg.norm(vectors, axis=1) + 1e-12
    return vectors / norms[:, None]
