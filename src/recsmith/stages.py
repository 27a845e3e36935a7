"""How long-running library work (training a pipeline, evaluating models) names its stages.

The library must not print: a CLI shows progress on a terminal, a server or a test shows none.
So work that takes minutes takes a ``StageHook`` and wraps each stage in ``with hook("name"):``;
the CLI passes one that draws a line per stage with its elapsed time (``recsmith.cli.progress``),
everyone else gets ``no_stages``.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

#: Called with a stage's name; the context it returns spans the stage.
StageHook = Callable[[str], AbstractContextManager[object]]


def no_stages(name: str) -> AbstractContextManager[object]:
    """The hook that reports nothing."""
    return nullcontext()


def within(hook: StageHook, prefix: str) -> StageHook:
    """``hook`` with every stage named ``prefix: name`` (a pipeline's stages inside an
    evaluation's)."""
    return lambda name: hook(f"{prefix}: {name}")
