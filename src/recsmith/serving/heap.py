"""Keep the garbage collector off the model: its objects live as long as it is served.

A loaded pipeline holds hundreds of thousands of Python objects (id maps, the catalogue's items),
and CPython's full collection walks every tracked object: about 300 ms at 100,000 items, during
which no request in the process moves — the whole p99 tail of the load test. ``gc.freeze`` moves
what exists now into the permanent generation, which collections skip; reference counting still
frees a swapped-out model once its last request ends.
"""

from __future__ import annotations

import gc


def freeze_loaded(*, collect: bool) -> None:
    """Exempt everything alive now from future collections. ``collect`` first frees cyclic garbage
    (a full pass: do it at start-up, not while serving)."""
    if collect:
        gc.collect()
    gc.freeze()
