"""Is a model directory fit to serve? Loaded exactly as the server loads it, then asked once.

``deploy`` and ``rollback`` run this before the registry's pointer moves, and the server's
reloader runs it before a swap, so a directory that does not load (a half-written one, a corrupt
file, arrays that load but do not fit together) is refused with its reason instead of becoming
the release every server tries, and fails, to load.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from recsmith.bundle import read_manifest
from recsmith.errors import ArtifactError
from recsmith.pipeline.artifact import load_artifact
from recsmith.pipeline.runtime import Pipeline

if TYPE_CHECKING:
    from recsmith.serving.deps import Served

#: A user id no model was trained on: the question that exercises the popularity fallback.
_STRANGER = "\x1fno-such-user"


def check_release(path: Path) -> Served:
    """The artifact in ``path``, after one known and one unknown user were answered (the model's
    scoring and the popularity fallback both ran); an ``ArtifactError`` naming ``path`` and what
    is wrong otherwise.

    A directory that is not a model at all (no manifest, or one that is not recsmith's) raises
    what ``read_manifest`` raises, as every command that takes a model directory does: that is
    a wrong path. Past the manifest any exception counts: a broken model can fail in any of the
    loaders (a missing file, a truncated archive, a bad array), and every one means "do not
    serve".
    """
    read_manifest(path)
    try:
        artifact = load_artifact(path)
        bundle = artifact.bundle if isinstance(artifact, Pipeline) else artifact
        known = bundle.users.external_ids[:1]
        artifact.recommend(np.array([*known, _STRANGER], dtype=object), 1)
    except Exception as exc:
        raise ArtifactError(f"{path} does not load: {type(exc).__name__}: {exc}") from exc
    return artifact
