"""What reasons call items, remembered per catalogue: "because you viewed Toy Story (1995)".

``Pipeline.display_names`` finds each id again in the release's memory-mapped ids (a binary
search through numpy calls, ~30 µs a request, 2 % of a serving worker: BENCHMARKS §38, §43) for
the anchors of every list it answers, and anchors repeat: they are the items users viewed last,
mostly the popular ones. A pipeline's titles never change in place (``item_titles.with_titles``
builds a new array for every catalogue change, and an index that grows gets new titles with it),
so a name found once for a titles array is that item's name for as long as the array serves.
``ReasonNames`` keeps them by array, for the few arrays serving at once (a release, a candidate
of an experiment, the one a catalogue change is replacing).

A coalesced pipeline call answers up to 64 lists, and each of their requests names its own
anchors: while names are not kept yet (a fresh server, a new release, every catalogue change's
new titles array) that was one search per request, ~30 µs of fixed numpy cost for a few ids.
Given the anchors of the whole call (``batch``), the first list named that misses a name finds
every list's missing names in one search, and the others find theirs kept.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from recsmith.pipeline.runtime import Pipeline

#: Titles arrays whose names are kept at once; the oldest is dropped past it.
ARRAYS_KEPT = 4
#: Names kept per array; past it they are forgotten and found again (a catalogue bounds them).
NAMES_KEPT = 200_000


class ReasonNames:
    """Names by item id per titles array (module docstring); safe from any thread."""

    def __init__(self) -> None:
        # id(titles) -> (the array itself, so the id cannot be reused while kept; its names)
        self._by_array: dict[int, tuple[np.ndarray, dict[str, str]]] = {}
        self._lock = threading.Lock()
        self._batch: object = None  # the last ``batch`` searched whole (held: its id stays its)

    def named(
        self,
        pipeline: Pipeline,
        item_ids: Sequence[str | None],
        batch: Sequence[Sequence[str | None]] | None = None,
    ) -> list[str | None]:
        """``pipeline.display_names`` of ``item_ids``, None staying None. ``batch``: the
        anchors of every list of the pipeline call ``item_ids`` are from; the first of them
        named here finds the names of all (module docstring).

        Under the lock: ``similar`` answers from the thread pool while lists are named on the event
        loop, and a reader must never see another thread's ``clear`` between filling and reading.
        """
        with self._lock:
            names = self._names(pipeline.titles)
            try:  # every name kept (nearly every list once its call's first list is named)
                return [None if i is None else names[i] for i in item_ids]
            except KeyError:
                pass
            wanted: Sequence[str | None] = item_ids
            if batch is not None and batch is not self._batch:
                self._batch = batch
                wanted = [*item_ids, *(i for row in batch for i in row)]
            missing = [i for i in dict.fromkeys(wanted) if i is not None and i not in names]
            if missing:
                if len(names) + len(missing) > NAMES_KEPT:
                    names.clear()
                names.update(zip(missing, pipeline.display_names(missing), strict=True))
            return [None if i is None else names[i] for i in item_ids]

    def _names(self, titles: np.ndarray) -> dict[str, str]:
        """The names kept for ``titles``, a new empty map for an array not seen (lock held)."""
        kept = self._by_array.get(id(titles))
        if kept is not None and kept[0] is titles:
            return kept[1]
        if len(self._by_array) >= ARRAYS_KEPT:
            del self._by_array[next(iter(self._by_array))]
        names: dict[str, str] = {}
        self._by_array[id(titles)] = (titles, names)
        return names
