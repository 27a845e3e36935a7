"""Fixtures shared by the compiled-tree tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from recsmith.trees.build import compiler, native_target


@pytest.fixture
def no_native_cc(tmp_path: Path) -> Path:
    """A compiler that fails every build for ``-march=native`` (an assembler without AVX-512,
    say) but answers ``-dM -E`` for it as the real one does; it appends each build it is asked
    for to ``builds.log`` beside it. Skips where the real compiler has no ``-march=native``."""
    cc = compiler()
    if cc is None or native_target(cc) is None:
        pytest.skip("no C compiler that takes -march=native here")
    script = tmp_path / "cc-no-native"
    script.write_text(
        "#!/bin/sh\n"
        f'for a in "$@"; do [ "$a" = -E ] && exec {cc} "$@"; done\n'
        f'echo "$*" >> {tmp_path}/builds.log\n'
        'for a in "$@"; do [ "$a" = -march=native ] && '
        '{ echo "Error: no such instruction: vcmpps" >&2; exit 1; }; done\n'
        f'exec {cc} "$@"\n'
    )
    script.chmod(0o755)
    return script
