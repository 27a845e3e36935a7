"""``CompiledForest``: a LightGBM model's raw scores from generated, compiled C, bit-identical to
``Booster.predict(raw_score=True)``.

Why: the ranker scores a few hundred candidates per user, and LightGBM's predict costs ~3 µs a
row there (BENCHMARKS §3), more than the whole request budget of issue #19. One ctypes call per
batch; ctypes lets go of the GIL while it runs, as LightGBM does.
"""

from __future__ import annotations

import ctypes
import logging

import numpy as np

from recsmith.trees.build import (
    NO_AVX512,
    CompileFailed,
    KernelUnavailable,
    compiler,
    load_library,
    native_target,
)
from recsmith.trees.codegen import c_source
from recsmith.trees.lightgbm_text import parse_model

log = logging.getLogger(__name__)


def _vector_library(source: str, narrowed: tuple[str, ...]) -> ctypes.CDLL:
    """The library of ``source`` built for this CPU; where the AVX-512 kernel does not build (an
    assembler that rejects its instructions, say), the AVX2 one, which costs ~0.65x the
    nested ifs' CPU on the ranker's features (BENCHMARKS §125) rather than their whole."""
    try:
        return load_library(source, narrowed=narrowed)
    except CompileFailed as exc:
        cc = compiler()
        if cc is None or "#define __AVX512F__ 1" not in (native_target(cc, narrowed) or ""):
            raise  # not the AVX-512 kernel that failed: narrowing would build the same again
        log.warning("trees: the AVX-512 kernel did not build (%s); building the AVX2 one", exc)
        return load_library(source, narrowed=(*narrowed, *NO_AVX512))


class CompiledForest:
    """Raw scores of a LightGBM text model. Raises ``UnsupportedModel`` if the generated code
    cannot reproduce the model exactly, ``KernelUnavailable`` if it cannot be built here.
    ``vectorised=False`` builds the nested ``if``s alone, for any CPU (tests compare both);
    ``narrowed``: compiler flags that turn off part of this CPU (``build.NO_AVX512``: the AVX2
    kernel on an AVX-512 machine, for tests and benchmarks)."""

    def __init__(
        self, model_text: str, vectorised: bool = True, narrowed: tuple[str, ...] = ()
    ) -> None:
        model = parse_model(model_text)
        self.n_features = model.n_features
        source = c_source(model, vectorised)
        try:
            if vectorised:
                lib = _vector_library(source, narrowed)
            else:
                lib = load_library(source, native=False)
        except CompileFailed as exc:
            if not vectorised:
                raise
            # a compiler or assembler that cannot build the vector kernel: the nested ifs (no
            # compiler, an unwritable cache: raised as they are, the nested ifs would fail alike)
            log.warning("trees: the vector kernel did not build (%s); scoring row by row", exc)
            lib = load_library(c_source(model, vectorised=False), native=False)
        self._calls = {}
        for dtype, name in ((np.float32, "forest_predict_f32"), (np.float64, "forest_predict_f64")):
            try:
                fn = getattr(lib, name)
            except AttributeError as exc:  # a library that is not ours under the cached name
                raise KernelUnavailable(f"{name} missing from the built library") from exc
            fn.argtypes = [ctypes.c_void_p, *[ctypes.c_int64] * 3, ctypes.c_void_p]
            fn.restype = ctypes.c_int32
            if fn(None, 0, 0, 0, None) != self.n_features:  # the library of another model
                raise KernelUnavailable(f"{name} was built for another feature count")
            self._calls[np.dtype(dtype)] = fn
        try:
            kernel = lib.forest_kernel
        except AttributeError as exc:  # a library that is not ours under the cached name
            raise KernelUnavailable("forest_kernel missing from the built library") from exc
        kernel.restype = ctypes.c_char_p
        #: which float32 entry was built: "avx512" or "avx2" (``vector_kernel``, 16 rows at a
        #: time), "ifs" (``codegen``'s nested ``if``s, row by row)
        self.kernel = kernel().decode()

    def predict(self, rows: np.ndarray) -> np.ndarray:
        """float64 [n]: the sum of the trees' leaf values for each row of ``rows`` [n, features]
        (float32 or float64; any other dtype is read as float64). Row-major rows and
        feature-major ones (``candidate_features``' columns, transposed: [features, n] in
        memory) are read in place; the kernel gathers a block's features from either, and
        from feature-major ones as contiguous runs (a batch of 16's ~3,800 rows: ~60 µs less
        than from rows, and no transposing copy before)."""
        if rows.ndim != 2 or rows.shape[1] != self.n_features:
            raise ValueError(f"rows: expected shape (n, {self.n_features}), got {rows.shape}")
        if rows.dtype not in self._calls:
            rows = rows.astype(np.float64)
        if rows.flags.c_contiguous:
            steps = (self.n_features, 1)
        elif rows.flags.f_contiguous:
            steps = (1, len(rows))
        else:
            rows = np.ascontiguousarray(rows)
            steps = (self.n_features, 1)
        out = np.empty(len(rows), np.float64)
        if len(rows):
            self._calls[rows.dtype](rows.ctypes.data, len(rows), *steps, out.ctypes.data)
        return out
