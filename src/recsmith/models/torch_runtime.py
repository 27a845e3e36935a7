"""What every torch-trained model needs from torch at fit time, and nothing at serving time.

torch is an optional extra (``pip install 'recsmith[torch]'``): models import it lazily through
``require_torch`` so a fitted model loads and serves with numpy alone, and a fit without the
extra fails with the install command rather than a bare ImportError.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from recsmith.errors import MissingExtraError


def require_torch() -> Any:
    """The torch module, or ``MissingExtraError`` naming the ``torch`` extra."""
    try:
        import torch
    except ImportError:
        raise MissingExtraError("torch", "torch") from None
    return torch


@contextmanager
def seeded(torch: Any, random_state: int, num_threads: int) -> Iterator[None]:
    """torch seeded with ``random_state`` without disturbing the caller's RNG, on
    ``num_threads`` threads (0: leave torch's setting), restored afterwards: CPU fits are then
    reproducible whatever ran before them."""
    threads = torch.get_num_threads()
    if num_threads:
        torch.set_num_threads(num_threads)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(random_state)
            yield
    finally:
        torch.set_num_threads(threads)


#: Array-name prefix of a network's weights in a saved model (``net__<state_dict key>``).
WEIGHTS_PREFIX = "net__"


def weight_arrays(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A network's numpy weights (by torch ``state_dict`` key) as savable array names."""
    return {WEIGHTS_PREFIX + k.replace(".", "__"): v for k, v in weights.items()}


def weights_from_arrays(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The weights ``weight_arrays`` saved, by ``state_dict`` key again."""
    return {
        k.removeprefix(WEIGHTS_PREFIX).replace("__", "."): v
        for k, v in arrays.items()
        if k.startswith(WEIGHTS_PREFIX)
    }
