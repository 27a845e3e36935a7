"""Fixtures shared by the compiled-tree tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from recsmith.trees.build import compiler, native_target


def _logging_cc(tmp_path: Path, name: str, build: str) -> Path:
    """A script standing in for the real compiler: ``-dM -E`` is answered by the real one, every
    other call is appended to ``builds.log`` beside it and then runs ``build`` (shell lines,
    ``{cc}`` the real compiler). Skips where the real compiler has no ``-march=native``."""
    cc = compiler()
    if cc is None or native_target(cc) is None:
        pytest.skip("no C compiler that takes -march=native here")
    script = tmp_path / name
    script.write_text(
        "#!/bin/sh\n"
        f'for a in "$@"; do [ "$a" = -E ] && exec {cc} "$@"; done\n'
        f'echo "$*" >> {tmp_path}/builds.log\n' + build.format(cc=cc)
    )
    script.chmod(0o755)
    return script


@pytest.fixture
def no_native_cc(tmp_path: Path) -> Path:
    """A compiler that fails every build for ``-march=native`` (an assembler without AVX-512,
    say) but answers ``-dM -E`` for it as the real one does; it appends each build it is asked
    for to ``builds.log`` beside it. Skips where the real compiler has no ``-march=native``."""
    return _logging_cc(
        tmp_path,
        "cc-no-native",
        'for a in "$@"; do [ "$a" = -march=native ] && '
        '{{ echo "Error: no such instruction: vcmpps" >&2; exit 1; }}; done\n'
        'exec {cc} "$@"\n',
    )


@pytest.fixture
def no_avx512_cc(tmp_path: Path) -> Path:
    """The real compiler, whose assembler rejects every build that targets AVX-512 (one older
    than AVX-512, say): each such build is handed a top-level ``.error`` directive, which the
    assembler refuses. ``-dM -E`` is answered as the real one does; each build it is asked for
    is appended to ``builds.log`` beside it."""
    header = tmp_path / "no-avx512.h"
    header.write_text(
        '#ifdef __AVX512F__\n__asm__(".error \\"no AVX-512 in this assembler\\"");\n#endif\n'
    )
    return _logging_cc(tmp_path, "cc-no-avx512", f'exec {{cc}} -include {header} "$@"\n')
