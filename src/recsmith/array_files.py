"""A release's arrays as a directory of plain ``.npy`` files, read back memory-mapped.

Why not ``.npz``: a zip member is decompressed into each process's private memory, so N server
workers serving a 1M-user release held N copies of its factors and seen-item matrix. A plain
``.npy`` file is mapped (``mmap_mode="r"``) instead: every worker reads the same pages of the
operating system's page cache, and only the pages a request touches are ever read from disk.

The mapped arrays are read-only, so nothing can write into the release on disk (or into what
another worker sees): code that needs to change an array copies it first. A release directory is
immutable once published (``recsmith.atomic_dir``), which is what makes mapping it safe; a file
truncated under a running server would fault the reader, as it would any program mapping it.

Format-1 releases stored the same arrays in ``.npz`` archives (``read_arrays`` still reads them,
into memory as before).
"""

from __future__ import annotations

import errno
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np

#: What an array's name may hold: it becomes a file name (``name.npy``).
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")


def save_arrays(directory: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write each array to ``directory/<name>.npy`` (no pickle: object arrays are refused)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, value in arrays.items():
        if not _NAME.fullmatch(name):
            raise ValueError(f"array name {name!r} cannot be a file name")
        _write_npy(directory / f"{name}.npy", np.asarray(value))


def _write_npy(file: Path, value: np.ndarray) -> None:
    """``value`` as a ``.npy`` file, its bytes written through Python's file object: numpy's own
    writer (``tofile``) reports a full disk or a file-size limit as a bare short write, where
    this raises the ``OSError`` that names it ("No space left on device", "File too large")."""
    if value.dtype.hasobject:
        raise ValueError("object arrays cannot be saved without pickle")
    array = value if value.flags.c_contiguous else value.copy(order="C")
    with file.open("wb") as out:
        np.lib.format.write_array_header_1_0(out, np.lib.format.header_data_from_array_1_0(array))
        out.write(array.reshape(-1).view(np.uint8).data)


def load_arrays(directory: Path) -> dict[str, np.ndarray]:
    """The arrays ``save_arrays`` wrote to ``directory``, each mapped read-only.

    Plain ``ndarray`` views of the maps (not ``np.memmap``, whose subclass would leak into every
    result computed from them); each view keeps its map open for as long as it lives."""
    if not directory.is_dir():
        raise FileNotFoundError(f"no array directory {directory}")
    return {
        file.name.removesuffix(".npy"): np.asarray(np.load(file, mmap_mode="r", allow_pickle=False))
        for file in sorted(directory.glob("*.npy"))
    }


def read_arrays(directory: Path, legacy: Path) -> dict[str, np.ndarray]:
    """``directory`` (format 2, mapped) when it exists, else the format-1 archive ``legacy``
    (``.npz``, read into memory); FileNotFoundError naming both when neither is there."""
    if directory.is_dir():
        return load_arrays(directory)
    if not legacy.is_file():
        raise FileNotFoundError(
            errno.ENOENT,
            f"No such file or directory (nor {legacy.name} of a format-1 release)",
            str(directory),
        )
    with np.load(legacy, allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}
