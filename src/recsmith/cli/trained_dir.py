"""A trained model or pipeline directory named on the command line, checked before it is read.

``read_manifest``'s own error ("not a model directory (no manifest.json): nothere") names the
path but not the option, and says the same of a missing directory, a file and an empty
directory; whoever typed ``--model-dir nothere`` should read which option is wrong, and why."""

from __future__ import annotations

from pathlib import Path

from recsmith.errors import ValidationError


def check_trained_dir(path: Path, option: str = "--model-dir") -> None:
    """Raise a ValidationError naming ``option`` and ``path`` unless ``path`` is a directory
    holding a manifest (what ``recsmith train --out`` writes last)."""
    if not path.exists():
        raise ValidationError(option, f"no such directory: {path}")
    if not path.is_dir():
        raise ValidationError(option, f"{path} is a file, not a trained model directory")
    if not (path / "manifest.json").is_file():
        raise ValidationError(
            option,
            f"{path} holds no trained model (no manifest.json; `recsmith train --out DIR` "
            "writes one)",
        )
