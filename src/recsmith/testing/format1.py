"""Turn a saved release into the format-1 layout, as recsmith before format 2 wrote it.

Format 1 kept each group of arrays in one ``.npz`` archive (``np.savez``, same keys) where format
2 keeps a directory of ``.npy`` files: ``ids.npz``, ``seen.npz``, ``model.npz`` inside each model
directory and ``pipeline.npz``. Tests use this to prove that releases published before the
upgrade still load and answer the same.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

#: format-2 array directory name → the format-1 archive that held the same arrays
ARCHIVES = {"ids": "ids.npz", "seen": "seen.npz", "arrays": "model.npz", "pipeline": "pipeline.npz"}
#: what format 2 added: the sort order of the ids, for lookups over the mapped ids
NEW_IN_FORMAT2 = {"users_order.npy", "items_order.npy"}
#: what releases carry since issue #19: arrays serving derives (``Recommender.derivations``)
DERIVED = "derived"


def downgrade_to_format1(release: Path) -> None:
    """Rewrite the release directory ``release`` in place in the format-1 layout."""
    for directory in sorted(release.rglob("*"), key=lambda p: -len(p.parts)):
        if directory.is_dir() and directory.name == DERIVED:
            shutil.rmtree(directory)
        elif directory.is_dir() and directory.name in ARCHIVES and any(directory.glob("*.npy")):
            arrays = {
                f.name.removesuffix(".npy"): np.load(f)
                for f in directory.glob("*.npy")
                if f.name not in NEW_IN_FORMAT2
            }
            np.savez(directory.parent / ARCHIVES[directory.name], **arrays)
            shutil.rmtree(directory)
    manifest = release / "manifest.json"
    meta = json.loads(manifest.read_text())
    meta["format_version"] = 1
    manifest.write_text(json.dumps(meta, indent=2) + "\n")
