"""``save_arrays`` writes files numpy's own reader reads back exactly, and a short write names
its cause."""

from __future__ import annotations

import resource
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from recsmith.array_files import load_arrays, save_arrays

ARRAYS = {
    "matrix": np.arange(12, dtype=np.float32).reshape(3, 4),
    "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
    "strided": np.arange(10, dtype=np.int64)[::3],
    "empty": np.zeros((0, 4), dtype=np.int32),
    "scalar": np.array(3.5),
    "text": np.array(["x", "yy"]),
    "flags": np.array([True, False, True]),
}


def test_numpys_reader_reads_what_was_written(tmp_path: Path) -> None:
    save_arrays(tmp_path, ARRAYS)
    mapped = load_arrays(tmp_path)
    for name, value in ARRAYS.items():
        read = np.load(tmp_path / f"{name}.npy", allow_pickle=False)  # the oracle: numpy
        assert read.dtype == value.dtype and read.shape == value.shape, name
        assert np.array_equal(read, value), name
        assert np.array_equal(mapped[name], value) and not mapped[name].flags.writeable, name


def test_object_arrays_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="object arrays"):
        save_arrays(tmp_path, {"bad": np.array([{}, 1], dtype=object)})


def test_a_file_size_limit_is_named(tmp_path: Path) -> None:
    """numpy's ``tofile`` says only "N requested and M written"; the system's words say why."""

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of death by signal
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    script = (
        "import sys, numpy as np; from pathlib import Path; "
        "from recsmith.array_files import save_arrays; "
        "save_arrays(Path(sys.argv[1]), {'big': np.zeros(10_000)})"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "out")],
        capture_output=True,
        text=True,
        preexec_fn=limit,
        timeout=60,
    )
    assert done.returncode != 0
    assert "File too large" in done.stderr, done.stderr
