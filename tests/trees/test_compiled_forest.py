"""The compiled forest against LightGBM itself, the oracle: every score bit-identical to
``Booster.predict(raw_score=True)`` on inputs aimed at the split rule's edges (each threshold and
its neighbours, NaN, 0 and -0, LightGBM's zero threshold, infinities), for every missing-value
mode and every float32 kernel this machine builds (AVX-512, AVX2: built here with AVX-512 turned
off, the nested ifs); what it cannot reproduce is refused, and the ranker then scores with
LightGBM."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import numpy as np
import pytest

lgb = pytest.importorskip("lightgbm")

import recsmith  # noqa: E402
from recsmith.ranking.ltr import LambdaMARTRanker, RankerConfig  # noqa: E402
from recsmith.trees import build  # noqa: E402
from recsmith.trees.build import NO_AVX512, KernelUnavailable  # noqa: E402
from recsmith.trees.codegen import c_source  # noqa: E402
from recsmith.trees.forest import CompiledForest  # noqa: E402
from recsmith.trees.lightgbm_text import UnsupportedModel, parse_model  # noqa: E402
from recsmith.trees.vector_kernel import AVX2, AVX512, MAX_FEATURES, float32_at_most  # noqa: E402

KZERO = float(np.float32(1e-35))  # LightGBM's kZeroThreshold

if build.compiler() is None:  # CI installs gcc and requires these tests (.ci/run)
    if os.environ.get("RECSMITH_REQUIRE_CC") == "1":
        pytest.fail("a C compiler is required (apt-get install gcc)", pytrace=False)
    pytest.skip("no C compiler (apt-get install gcc)", allow_module_level=True)


@pytest.fixture(autouse=True)
def _own_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("RECSMITH_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "trees"))


def training_rows(seed: int, n: int = 1500, n_features: int = 6) -> np.ndarray:
    """Features with NaN, exact zeros, tiny values around LightGBM's zero threshold and
    repeated values, so that splits land on all of them."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, n_features))
    x[rng.random(x.shape) < 0.15] = np.nan
    x[rng.random(x.shape) < 0.15] = 0.0
    x[:, 1] = np.round(x[:, 1] * 3)  # few distinct values
    x[:, 2] = np.where(rng.random(n) < 0.5, rng.choice([-2e-35, 5e-36, 2e-35], n), x[:, 2])
    return x


def train(seed: int, objective: str = "lambdarank", trees: int = 12, **params) -> lgb.Booster:
    return _train(seed, objective, trees, tuple(sorted(params.items())))


@cache
def _train(seed: int, objective: str, trees: int, params: tuple) -> lgb.Booster:
    x = training_rows(seed)
    rng = np.random.default_rng(seed + 1)
    label = (np.nan_to_num(x[:, 0]) + np.nan_to_num(x[:, 1]) + rng.normal(size=len(x)) > 0.5) * 1
    label += np.isnan(x[:, 3]) * 1  # missing values carry signal: default directions vary
    groups = [50] * (len(x) // 50) if "rank" in objective else None
    dataset = lgb.Dataset(x, label=label, group=groups)
    base = {"objective": objective, "num_leaves": 15, "min_child_samples": 5, "verbosity": -1}
    base["num_threads"] = 1
    return lgb.train({**base, **dict(params)}, dataset, num_boost_round=trees)


def edge_rows(booster: lgb.Booster, seed: int) -> np.ndarray:
    """Random rows, then rows whose every value is one of the model's thresholds, the doubles
    next to it, or a special value."""
    model = parse_model(booster.model_to_string())
    n_features = model.n_features
    thresholds = np.concatenate([t.threshold for t in model.trees])
    with np.errstate(over="ignore"):  # thresholds past float32's range round to ±inf
        rounded = np.float32(thresholds).astype(np.float64)
    special = [np.nan, 0.0, -0.0, KZERO, -KZERO, 1e-36, -1e-36, 2e-35, -2e-35, np.inf, -np.inf]
    values = np.concatenate(
        [
            thresholds,
            np.nextafter(thresholds, np.inf),
            np.nextafter(thresholds, -np.inf),
            rounded,  # float32 rounding either side
            special,
        ]
    )
    rng = np.random.default_rng(seed)
    picked = rng.choice(values, size=(4000, n_features))
    return np.concatenate([training_rows(seed + 7, n=500, n_features=n_features), picked])


AVX512_PROBE = """#include <immintrin.h>
__m512i probe(__m512 x, const float *t) {
    __mmask16 k;
    __asm__("vcmpps $14, %2%{1to16%}, %1, %0" : "=k"(k) : "v"(x), "m"(*t));
    return _mm512_maskz_lzcnt_epi32(k, _mm512_castps_si512(x));
}
"""
AVX2_PROBE = """#include <immintrin.h>
__m256i probe(__m256 x, const float *t, __m256i w) {
    const __m256i k = _mm256_castps_si256(_mm256_cmp_ps(x, _mm256_broadcast_ss(t), _CMP_LE_OQ));
    return _mm256_blendv_epi8(_mm256_and_si256(w, k), w, _mm256_cmpeq_epi32(w, k));
}
"""


@cache
def compiler_macros(narrowed: tuple[str, ...] = ()) -> str | None:
    """The macros the compiler predefines with ``-march=native`` and ``narrowed``, asked here
    rather than through ``build.native_target`` (so that the oracle below shares nothing with
    the code it checks); None when it does not take the flags."""
    cc = build.compiler()
    if cc is None:
        return None
    command = [cc, "-march=native", *narrowed, "-dM", "-E", "-x", "c", os.devnull]
    done = subprocess.run(command, capture_output=True, text=True)
    return done.stdout if done.returncode == 0 else None


@cache
def builds_here(narrowed: tuple[str, ...] = ()) -> str:
    """The float32 kernel the forest must have built with ``-march=native`` and ``narrowed``
    here (an oracle independent of ``codegen``'s guards): "avx512" where the compiler's own
    macros say it targets AVX-512 F and CD and it assembles a probe using them, else "avx2"
    likewise (AVX2, and not Zen 1, which splits 256-bit operations), else "ifs"."""
    cc = build.compiler()
    macros = set((compiler_macros(narrowed) or "").splitlines())
    for kernel, wanted, unwanted, probe in (
        ("avx512", {"#define __AVX512F__ 1", "#define __AVX512CD__ 1"}, set(), AVX512_PROBE),
        ("avx2", {"#define __AVX2__ 1"}, {"#define __znver1 1"}, AVX2_PROBE),
    ):
        if not wanted <= macros or unwanted & macros:
            continue
        command = [cc, "-march=native", *narrowed, "-c", "-x", "c", "-", "-o", os.devnull]
        if subprocess.run(command, input=probe, capture_output=True, text=True).returncode == 0:
            return kernel
    return "ifs"


def cpu_flags() -> str:
    """The CPU's flags as Linux lists them (empty elsewhere), padded with spaces."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""
    return " " + next((line for line in info.splitlines() if line.startswith("flags")), "") + " "


#: how each kernel is asked for: the machine's best, AVX-512 turned off (AVX2 where the CPU has
#: it), the nested ifs alone
KERNELS = {"native": {}, "no_avx512": {"narrowed": NO_AVX512}, "ifs": {"vectorised": False}}


def kernel_here(ask: str) -> str:
    """The kernel ``KERNELS[ask]`` must build here."""
    return "ifs" if ask == "ifs" else builds_here(KERNELS[ask].get("narrowed", ()))


def assert_identical(booster: lgb.Booster, rows: np.ndarray) -> None:
    """Every kernel (AVX-512 and AVX2 where the machine has them, the nested ifs) scores
    ``rows`` as float64 and as float32 exactly as LightGBM does."""
    text = booster.model_to_string()
    for ask in KERNELS:
        forest = CompiledForest(text, **KERNELS[ask])
        assert forest.kernel == kernel_here(ask)
        for dtype in (np.float64, np.float32):
            with np.errstate(over="ignore"):  # thresholds past float32's range read as ±inf
                typed = rows.astype(dtype)
            expected = booster.predict(typed, raw_score=True, num_threads=1)
            got = forest.predict(typed)
            assert got.dtype == np.float64
            assert np.max(np.abs(got - expected)) <= 1e-12, forest.kernel
            assert np.array_equal(got, expected), f"not bit-identical ({forest.kernel})"


def test_the_float32_kernel_is_the_machines_best():
    """On an AVX-512 machine the tests above really ran the AVX-512 kernel, and the AVX2 one
    with AVX-512 turned off; on an AVX2 machine the AVX2 one both times; elsewhere, and when
    asked, the nested ifs."""
    text = train(3).model_to_string()
    best = CompiledForest(text).kernel
    assert best == builds_here()
    assert CompiledForest(text, narrowed=NO_AVX512).kernel == builds_here(NO_AVX512)
    assert CompiledForest(text, vectorised=False).kernel == "ifs"
    macros = compiler_macros()
    if " avx2 " in cpu_flags() and macros is not None and "__znver1 " not in macros:
        assert builds_here(NO_AVX512) == "avx2"  # the oracle is not vacuous where it matters


#: narrowing ``-march=native`` to a CPU with neither AVX-512 nor AVX2 (AVX alone, say)
NO_AVX2 = (*NO_AVX512, "-mno-avx2")


def test_a_cpu_without_avx2_is_built_the_nested_ifs_at_once(tmp_path, monkeypatch, caplog):
    """Not a vector kernel that fails to build and falls back: the guards leave it out, so no
    warning is logged and no failed build is remembered, one library is built."""
    monkeypatch.setenv("RECSMITH_CACHE_DIR", str(tmp_path))
    assert builds_here(NO_AVX2) == "ifs"
    booster = train(3)
    forest = CompiledForest(booster.model_to_string(), narrowed=NO_AVX2)
    assert forest.kernel == "ifs"
    assert "did not build" not in caplog.text
    assert [path.suffix for path in tmp_path.glob("forest-*") if path.suffix != ".lock"] == [".so"]
    with np.errstate(over="ignore"):  # thresholds past float32's range read as ±inf
        rows = edge_rows(booster, 6).astype(np.float32)
    assert np.array_equal(forest.predict(rows), booster.predict(rows, raw_score=True))


@pytest.mark.parametrize(
    ("march", "kernel"),
    [
        ("skylake-avx512", "avx512"),
        ("haswell", "avx2"),
        ("znver2", "avx2"),
        ("znver3", "avx2"),
        ("znver1", "ifs"),  # Zen 1 splits each 256-bit operation in two (see ``_Avx2``)
        ("sandybridge", "ifs"),  # AVX without AVX2
        ("x86-64", "ifs"),
    ],
)
def test_each_cpu_gets_its_kernel(march, kernel):
    """Which entry the generated C keeps, preprocessed for a CPU this machine need not be (so
    not run): the one ``forest_kernel`` line left names it."""
    source = c_source(parse_model(train(3).model_to_string()))
    command = [build.compiler(), f"-march={march}", "-E", "-P", "-x", "c", "-"]
    done = subprocess.run(command, input=source, capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"the compiler does not know -march={march}: {done.stderr[:200]}")
    assert re.findall(r'forest_kernel\(void\) \{ return "(\w+)"; \}', done.stdout) == [kernel]


@cache
def wide_booster(n_features: int) -> lgb.Booster:
    rng = np.random.default_rng(n_features)
    x = rng.normal(size=(300, n_features))
    y = x[:, 0] - x[:, -1] + rng.normal(size=300)
    params = {"objective": "regression", "num_leaves": 7, "verbosity": -1, "num_threads": 1}
    return lgb.train(params, lgb.Dataset(x, label=y), num_boost_round=5)


@pytest.mark.parametrize("ask", ["native", "no_avx512"])
def test_a_model_wider_than_the_kernels_stack_budget_keeps_the_nested_ifs(ask):
    """Either vector kernel holds a chunk's features (at most 16 KiB) and a block's cell row (64
    bytes a feature) on the stack: up to ``MAX_FEATURES`` (256: 32 KiB) it serves, one feature
    more gets the nested ifs; both score as LightGBM does."""
    assert MAX_FEATURES == 256
    for n_features, kernel in ((256, kernel_here(ask)), (257, "ifs")):
        booster = wide_booster(n_features)
        forest = CompiledForest(booster.model_to_string(), **KERNELS[ask])
        assert forest.kernel == kernel, n_features
        rows = np.random.default_rng(1).normal(size=(40, n_features)).astype(np.float32)
        assert np.array_equal(forest.predict(rows), booster.predict(rows, raw_score=True))


#: features → blocks of 16 rows a chunk, by hand: 16 KiB of stack / (64 bytes a feature a block),
#: at most 8, at least 1
CHUNK_BLOCKS = {6: 8, 22: 8, 36: 7, 40: 6, 50: 5, 60: 4, 65: 3, 100: 2, 128: 2, 129: 1, 256: 1}


@pytest.mark.parametrize(("n_features", "chunk"), CHUNK_BLOCKS.items())
def test_a_chunks_features_stay_within_16_kib_of_stack(n_features, chunk):
    """The chunk's features on the stack, ``xs[chunk][vectors]``, in the generated C of either
    variant: a bigger chunk of a wide model (4 blocks at 256 features: an ~80 KiB frame) would
    overflow a small thread stack, which no run here need show (its frame may happen to fit)."""
    model = parse_model(wide_booster(n_features).model_to_string())
    for variant, vector, vectors in (
        (AVX512, "__m512", n_features),
        (AVX2, "__m256", 2 * n_features),
    ):
        declared = re.findall(r"(__m\d+) xs\[(\d+)\]\[(\d+)\];", variant.source(model))
        assert declared == [(vector, str(chunk), str(vectors))], variant.name
        assert chunk * vectors * int(vector[4:]) // 8 <= 16384


@pytest.mark.parametrize("ask", ["native", "no_avx512"])
@pytest.mark.parametrize("n_features", [n for n, chunk in CHUNK_BLOCKS.items() if 2 <= chunk <= 7])
def test_chunks_of_two_to_seven_blocks_score_every_row_over_several_chunks(n_features, ask):
    """A wide model's chunk is fewer than 8 blocks: rows over several such chunks, a whole
    one and a partial last block, in either layout, score as LightGBM does."""
    booster = wide_booster(n_features)
    forest = CompiledForest(booster.model_to_string(), **KERNELS[ask])
    assert forest.kernel == kernel_here(ask)
    rows = np.random.default_rng(n_features).normal(size=(3 * 8 * 16 + 5, n_features))
    rows = rows.astype(np.float32)
    rows[::7, ::3] = np.nan
    for n in (16 * CHUNK_BLOCKS[n_features], 2 * 16 * CHUNK_BLOCKS[n_features] + 5, len(rows)):
        expected = booster.predict(rows[:n], raw_score=True, num_threads=1)
        assert np.array_equal(forest.predict(rows[:n]), expected), n
        assert np.array_equal(forest.predict(np.asfortranarray(rows[:n])), expected), n


def run_child(script: str, *args: object) -> str:
    """Run ``script`` in a fresh interpreter (a segfault there fails the test, not the run);
    what it printed."""
    src = str(Path(recsmith.__file__).parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-c", script, *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-2000:]}"
    return done.stdout


SMALL_STACK = """
import sys, threading
import numpy as np
from recsmith.trees.forest import CompiledForest
model, rows, out, *narrowed = sys.argv[1:]
forest = CompiledForest(open(model).read(), narrowed=tuple(narrowed))
threading.stack_size(128 * 1024)  # musl's default thread stack
scored = []
worker = threading.Thread(target=lambda: scored.append(forest.predict(np.load(rows))))
worker.start()
worker.join()
np.save(out, scored[0])
print(forest.kernel)
"""


@pytest.mark.parametrize("narrowed", [(), NO_AVX512], ids=["native", "no_avx512"])
def test_the_widest_vector_kernel_runs_on_a_small_thread_stack(tmp_path, narrowed):
    """A model of ``MAX_FEATURES`` features scored in a thread of musl's 128 KiB stack."""
    booster = wide_booster(MAX_FEATURES)
    (tmp_path / "model.txt").write_text(booster.model_to_string())
    rows = np.random.default_rng(2).normal(size=(40, MAX_FEATURES)).astype(np.float32)
    np.save(tmp_path / "rows.npy", rows)
    files = [tmp_path / "model.txt", tmp_path / "rows.npy", tmp_path / "out.npy"]
    assert run_child(SMALL_STACK, *files, *narrowed).split() == [builds_here(narrowed)]
    assert np.array_equal(np.load(tmp_path / "out.npy"), booster.predict(rows, raw_score=True))


GUARDED = """
import ctypes, mmap, sys
import numpy as np
from recsmith.trees.forest import CompiledForest
model, rows_file, out, layout, *narrowed = sys.argv[1:]
forest = CompiledForest(open(model).read(), narrowed=tuple(narrowed))
rows = np.load(rows_file)
page = mmap.PAGESIZE
size = -(-rows.nbytes // page) * page
memory = mmap.mmap(-1, size + page)
base = ctypes.addressof(ctypes.c_char.from_buffer(memory))
libc = ctypes.CDLL(None, use_errno=True)
libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
assert libc.mprotect(base + size, page, 0) == 0, ctypes.get_errno()  # PROT_NONE past the rows
placed = np.frombuffer(memory, np.float32, rows.size, size - rows.nbytes)
# row-major: the last row ends at the page; feature-major: the last feature's column does
placed = placed.reshape(rows.shape) if layout == "rows" else placed.reshape(rows.shape[::-1]).T
placed[:] = rows
handed = []  # what predict passes the kernel: the placed rows themselves, not a copy
call = forest._calls[np.dtype(np.float32)]
forest._calls[np.dtype(np.float32)] = lambda at, *rest: (handed.append(at), call(at, *rest))[1]
np.save(out, forest.predict(placed))
print(forest.kernel, handed == [placed.ctypes.data])
"""


@pytest.mark.parametrize("layout", ["rows", "features"])
@pytest.mark.parametrize("ask", ["native", "no_avx512"])
@pytest.mark.parametrize("n_rows", [1, 9, 17, 20])
def test_nothing_past_the_last_row_is_read(tmp_path, n_rows, ask, layout):
    """The rows end at a page boundary, a page no process may read after it: a block of fewer
    than 16 rows reads only its own (a read past them would end the process), row-major or
    feature-major (the last feature's column ends there)."""
    booster = train(3)
    rows = edge_rows(booster, 5)[:n_rows].astype(np.float32)
    (tmp_path / "model.txt").write_text(booster.model_to_string())
    np.save(tmp_path / "rows.npy", rows)
    files = [tmp_path / "model.txt", tmp_path / "rows.npy", tmp_path / "out.npy"]
    printed = run_child(GUARDED, *files, layout, *KERNELS[ask].get("narrowed", ()))
    assert printed.split() == [kernel_here(ask), "True"]  # read in place, up to the guard
    assert np.array_equal(np.load(tmp_path / "out.npy"), booster.predict(rows, raw_score=True))


SCORE = """
import sys
import numpy as np
from recsmith.trees.forest import CompiledForest
narrowed = tuple(sys.argv[2].split()) if sys.argv[2] else ()
forest = CompiledForest(open(sys.argv[1]).read(), narrowed=narrowed)
for rows, out in zip(sys.argv[3::2], sys.argv[4::2]):
    np.save(out, forest.predict(np.load(rows)))
print(forest.kernel)
"""


@pytest.mark.parametrize("ask", ["native", "no_avx512"])
def test_no_read_outside_the_rows_or_the_tables_under_address_sanitizer(tmp_path, monkeypatch, ask):
    """The library built with AddressSanitizer (redzones after the rows' heap block and after
    the static ``LEAVES`` table, whose padding the last tree's AVX-512 lookup reads into; the
    AVX2 kernel has none: it reads each row's leaf alone): scoring blocks of 1, 9, 17 and 20
    rows reports no access outside either."""
    cc = build.compiler()
    assert cc is not None
    found = subprocess.run([cc, "-print-file-name=libasan.so"], capture_output=True, text=True)
    runtime = found.stdout.strip()
    if not os.path.isabs(runtime):
        pytest.skip(f"{cc} has no AddressSanitizer runtime")
    asan = tmp_path / "cc-asan"
    asan.write_text(
        "#!/bin/sh\n"
        f'for a in "$@"; do [ "$a" = -E ] && exec {cc} "$@"; done\n'
        f'exec {cc} -fsanitize=address "$@"\n'
    )
    asan.chmod(0o755)
    monkeypatch.setenv("CC", str(asan))
    monkeypatch.setenv("RECSMITH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("LD_PRELOAD", runtime)
    monkeypatch.setenv("ASAN_OPTIONS", "detect_leaks=0")
    if subprocess.run([sys.executable, "-c", "pass"], capture_output=True).returncode != 0:
        pytest.skip("python does not start under AddressSanitizer here")
    booster = train(3)  # 12 trees of 15 leaves: every AVX-512 lookup reads 32 leaves
    (tmp_path / "model.txt").write_text(booster.model_to_string())
    files: list[object] = [tmp_path / "model.txt", " ".join(KERNELS[ask].get("narrowed", ()))]
    expected = []
    for n_rows in (1, 9, 17, 20):
        rows = edge_rows(booster, 5)[:n_rows].astype(np.float32)
        np.save(tmp_path / f"rows{n_rows}.npy", rows)
        files += [tmp_path / f"rows{n_rows}.npy", tmp_path / f"out{n_rows}.npy"]
        expected.append(booster.predict(rows, raw_score=True))
    assert run_child(SCORE, *files).split() == [kernel_here(ask)]
    for n_rows, scores in zip((1, 9, 17, 20), expected, strict=True):
        assert np.array_equal(np.load(tmp_path / f"out{n_rows}.npy"), scores)


def test_every_leaf_lookup_stays_inside_the_leaf_table():
    """A tree of up to 32 leaves is looked up by four 8-double loads from its first leaf: the
    last tree's, fewer than 32, must still read inside ``LEAVES`` (its padding). Checked on the
    generated C: no run could see a read past a static array end except by luck of layout."""
    source = AVX512.source(parse_model(train(3).model_to_string()))  # trees of 15 leaves
    table = re.search(r"static const double LEAVES\[\] = \{([^}]*)\};", source)
    assert table is not None
    size = len(table.group(1).split(","))
    # each tree reads its leaves from the pointer its call passes: its first leaf
    assert len(re.findall(r"LOOKUP32\([^;]*?, v\)", source)) == 2 * 12  # two (8 rows each)
    starts = [
        int(at)
        for at in re.findall(
            r"tree_v\d+\(xs\[j\], accs\[j\], t \+ \d+, m \+ \d+, v \+ (\d+)\)", source
        )
    ]
    assert len(starts) == 12
    assert max(starts) + 32 <= size


def test_a_vector_kernel_that_does_not_build_leaves_the_nested_ifs(
    tmp_path, monkeypatch, caplog, no_native_cc
):
    """An assembler without AVX-512, say: the forest is still compiled, row by row, rather than
    left to LightGBM; and the failed build is remembered, not run again at the next load."""
    monkeypatch.setenv("CC", str(no_native_cc))
    monkeypatch.setenv("RECSMITH_CACHE_DIR", str(tmp_path / "cache"))
    booster = train(13)
    forest = CompiledForest(booster.model_to_string())
    assert forest.kernel == "ifs"
    assert "the vector kernel did not build" in caplog.text
    # AVX-512 (where the compiler targets it), then AVX2, then the ifs
    builds = 3 if "#define __AVX512F__ 1" in (compiler_macros() or "") else 2
    assert len((tmp_path / "builds.log").read_text().splitlines()) == builds
    with np.errstate(over="ignore"):  # thresholds past float32's range read as ±inf
        rows = edge_rows(booster, 3).astype(np.float32)
    assert np.array_equal(forest.predict(rows), booster.predict(rows, raw_score=True))
    caplog.clear()
    again = CompiledForest(booster.model_to_string())  # built once, then found in the cache
    assert again.kernel == "ifs"
    assert "no such instruction: vcmpps" in caplog.text and "remembered in" in caplog.text
    assert len((tmp_path / "builds.log").read_text().splitlines()) == builds
    assert np.array_equal(again.predict(rows), booster.predict(rows, raw_score=True))


def test_an_avx512_kernel_that_does_not_build_leaves_the_avx2_one(
    tmp_path, monkeypatch, caplog, no_avx512_cc
):
    """An assembler that rejects AVX-512 on an AVX-512 machine: the AVX2 kernel, not the nested
    ifs (~1.5x its CPU), and the log says so; remembered, not built again at the next load."""
    if (builds_here(), builds_here(NO_AVX512)) != ("avx512", "avx2"):  # asked of the real cc
        pytest.skip("the compiler does not target AVX-512 and AVX2 here")
    monkeypatch.setenv("CC", str(no_avx512_cc))
    monkeypatch.setenv("RECSMITH_CACHE_DIR", str(tmp_path / "cache"))
    booster = train(13)
    with np.errstate(over="ignore"):  # thresholds past float32's range read as ±inf
        rows = edge_rows(booster, 3).astype(np.float32)
    for load in ("built", "remembered"):
        caplog.clear()
        forest = CompiledForest(booster.model_to_string())
        assert forest.kernel == "avx2", load
        assert "no AVX-512 in this assembler" in caplog.text, load
        assert "the AVX-512 kernel did not build" in caplog.text, load
        assert "building the AVX2 one" in caplog.text, load
        assert "the vector kernel did not build" not in caplog.text, load
        assert len((tmp_path / "builds.log").read_text().splitlines()) == 2, load
        assert np.array_equal(forest.predict(rows), booster.predict(rows, raw_score=True))


def test_no_compiler_is_raised_as_such_not_as_a_vector_kernel_that_did_not_build(
    tmp_path, monkeypatch, caplog
):
    monkeypatch.delenv("CC", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no cc, no gcc
    with pytest.raises(KernelUnavailable, match="no C compiler"):
        CompiledForest(train(3).model_to_string())
    assert "vector kernel" not in caplog.text


@pytest.mark.parametrize("layout", ["rows", "features"])
@pytest.mark.parametrize("ask", ["native", "no_avx512"])
@pytest.mark.parametrize("n_rows", [0, 1, 7, 8, 9, 15, 16, 17, 24, 31, 33, 257])
def test_every_row_of_a_partial_block_is_scored_and_nothing_past_it_written(n_rows, ask, layout):
    """Blocks are 16 rows (AVX2: two vectors of 8): every count around 8 and 16 is scored,
    from row-major rows and from feature-major ones (``candidate_features``' layout)."""
    booster = train(3)
    rows = edge_rows(booster, 5)[:n_rows].astype(np.float32)
    expected = booster.predict(rows, raw_score=True, num_threads=1)
    forest = CompiledForest(booster.model_to_string(), **KERNELS[ask])
    assert forest.kernel == kernel_here(ask)
    if layout == "features":
        rows = np.asfortranarray(rows)
    steps = (rows.shape[1], 1) if layout == "rows" else (1, n_rows)
    out = np.full(n_rows + 16, 7.0)  # a guard past the rows: the kernel writes n_rows scores
    forest._calls[np.dtype(np.float32)](rows.ctypes.data, n_rows, *steps, out.ctypes.data)
    assert np.array_equal(out[:n_rows], expected)
    assert np.all(out[n_rows:] == 7.0)
    handed = handed_to_the_kernel(forest)
    assert np.array_equal(forest.predict(rows), expected)
    wide = rows.astype(np.float64)  # the nested ifs' entry, in the same layout
    assert wide.flags.f_contiguous == (layout == "features" or n_rows <= 1)
    assert np.array_equal(forest.predict(wide), expected)
    # both read in place: the arrays' own memory, stepped as laid out (one row is both layouts)
    steps = (1, n_rows) if layout == "features" and n_rows > 1 else (rows.shape[1], 1)
    expected_calls = [(rows.ctypes.data, n_rows, *steps), (wide.ctypes.data, n_rows, *steps)]
    assert handed == (expected_calls if n_rows else [])  # no rows: no call


def handed_to_the_kernel(forest: CompiledForest) -> list[tuple[int, int, int, int]]:
    """Wrap the forest's entries so that each call's rows address, row count and steps are
    recorded (the list returned) before the call goes on to the entry."""
    handed: list[tuple[int, int, int, int]] = []
    for dtype, call in list(forest._calls.items()):

        def recording(rows, n_rows, row_step, feature_step, out, call=call):
            handed.append((rows, n_rows, row_step, feature_step))
            return call(rows, n_rows, row_step, feature_step, out)

        forest._calls[dtype] = recording
    return handed


@pytest.mark.parametrize("leaves", [7, 32, 33, 64, 100])
def test_trees_of_up_to_and_past_32_leaves_score_exactly(leaves):
    """Up to 32 leaves a tree's leaves fit one 32-bit word per row (32: the sign bit used);
    past it the leaves span several words and are gathered."""
    booster = train(6, objective="regression", trees=6, num_leaves=leaves, min_child_samples=2)
    text = booster.model_to_string()
    assert f"num_leaves={leaves}" in text
    assert_identical(booster, edge_rows(booster, 12))


def test_values_past_float32s_range_and_around_zero():
    """Thresholds beyond float32's largest value, and between 0 and LightGBM's zero
    threshold, decide float32 rows (where such values read as ±inf and 0) as LightGBM does."""
    rng = np.random.default_rng(21)
    x = training_rows(21)
    x[:, 4] = rng.choice([-1e39, -3.5e38, 3.5e38, 1e39, 2e39, 1.0, -1.0], len(x))
    x[:, 5] = rng.choice([-3e-36, -1e-40, 0.0, 1e-40, 3e-36, 1e-30, -1e-30], len(x))
    label = (x[:, 4] > 5e38) * 1.0 + (x[:, 5] < -1e-36) * 2.0 + rng.normal(size=len(x)) * 0.1
    booster = lgb.train(
        {"objective": "regression", "verbosity": -1, "num_threads": 1, "min_child_samples": 3},
        lgb.Dataset(x, label=label),
        num_boost_round=8,
    )
    thresholds = np.concatenate([t.threshold for t in parse_model(booster.model_to_string()).trees])
    assert np.any(np.abs(thresholds) > np.finfo(np.float32).max)  # the test is about these
    assert_identical(booster, np.concatenate([x, edge_rows(booster, 22)]))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1.0, 1.0),
        (0.1, 0.09999999403953552),  # float32(0.1) is 0.10000000149...: the one below it
        (1e39, float(np.finfo(np.float32).max)),
        (-1e39, -np.inf),
        (np.inf, np.inf),
        (-np.inf, -np.inf),
    ],
)
def test_float32_at_most(value, expected):
    assert float32_at_most(value) == expected


def test_float32_at_most_against_every_neighbour():
    """For random doubles, the float32 returned is <= the double and its successor is not: an
    oracle built from numpy's float32 neighbours, not from the function's own rounding."""
    rng = np.random.default_rng(3)
    values = np.concatenate([rng.normal(size=500) * 10.0 ** rng.integers(-30, 30, 500)])
    for value in values.tolist():
        got = np.float32(float32_at_most(value))
        assert float(got) <= value < float(np.nextafter(got, np.float32(np.inf)))


@pytest.mark.parametrize(
    "params",
    [
        {},  # missing type NaN where a feature had NaN, None elsewhere
        {"zero_as_missing": True},  # missing type Zero
        {"use_missing": False},  # missing type None everywhere: NaN reads as 0
        {"objective": "regression", "num_leaves": 31},
    ],
    ids=["nan", "zero_as_missing", "no_missing", "regression"],
)
def test_scores_are_lightgbms_exactly(params):
    booster = train(3, **params)
    text = booster.model_to_string()
    assert "decision_type" in text
    assert_identical(booster, edge_rows(booster, 11))


def test_a_forest_of_the_rankers_size_scores_exactly_in_either_layout():
    """100 trees of up to 31 leaves, the ranker's shape: each tree reads its thresholds, masks
    and leaves at small offsets from pointers its call passes, into tables thousands of entries
    long; a tree handed another's place, or an offset from the tables' start, scores wrongly.
    LightGBM is the oracle, for rows in either layout (the ranker's are feature-major)."""
    booster = train(5, trees=100, num_leaves=31)
    model = parse_model(booster.model_to_string())
    assert len(model.trees) == 100
    assert sum(len(tree.left) for tree in model.trees) > 1000  # far past one byte's reach
    rows = edge_rows(booster, 13)
    assert_identical(booster, rows)
    assert_identical(booster, np.asfortranarray(rows))
    # a tree runs over a chunk of blocks (8 of 16 rows here) before the next: a lone row, a
    # chunk less one row, one chunk, a row past it, two chunks and a partial block
    for n in (1, 127, 128, 129, 273):
        assert_identical(booster, np.asfortranarray(rows[:n]))


def test_every_missing_mode_and_direction_is_exercised():
    """The models above really contain what the test claims to cover (a guard on the test)."""
    kinds = set()
    for params in ({}, {"zero_as_missing": True}, {"use_missing": False}):
        for tree in parse_model(train(3, **params).model_to_string()).trees:
            kinds.update(zip(tree.nan_left.tolist(), tree.zero_left.tolist(), strict=True))
    # NaN and 0 each go both ways somewhere, and apart from each other somewhere
    assert kinds >= {(True, True), (False, False), (True, False), (False, True)}


def test_one_leaf_trees_and_a_lone_row():
    booster = train(5, min_child_samples=10_000, trees=3)  # no split is allowed: one leaf each
    assert "num_leaves=1" in booster.model_to_string()
    assert_identical(booster, edge_rows(train(5), 2)[:, : booster.num_feature()])
    forest = CompiledForest(booster.model_to_string())
    one = np.full((1, booster.num_feature()), 0.25)
    assert forest.predict(one)[0] == booster.predict(one, raw_score=True)[0]
    assert forest.predict(np.zeros((0, booster.num_feature()))).shape == (0,)


@cache
def one_leaf_then_split_trees() -> lgb.Booster:
    """A regression model whose first tree is one leaf holding the labels' mean (5.0: LightGBM
    keeps such a tree only first, when its boost from the average cannot split), then trees
    with splits; a ranker's one-leaf trees hold 0 and would not show a kernel adding it to some
    rows only."""
    x = training_rows(8)
    rng = np.random.default_rng(9)
    label = np.nan_to_num(x[:, 0]) + rng.normal(size=len(x)) + 5.0
    params = {"objective": "regression", "num_leaves": 7, "verbosity": -1, "num_threads": 1}
    gains = [1e300] + [0.0] * 5  # no split in the first round, any after it
    callbacks = [lgb.reset_parameter(min_gain_to_split=gains)]
    return lgb.train(params, lgb.Dataset(x, label=label), num_boost_round=6, callbacks=callbacks)


def test_a_one_leaf_tree_of_a_non_zero_value_is_added_to_every_row_of_a_block():
    """Blocks of 16 rows (AVX2: two halves of 8, four accumulators), 17 and 33 (a partial
    block after full ones) and the edge rows: the one leaf's value reaches every row."""
    booster = one_leaf_then_split_trees()
    trees = parse_model(booster.model_to_string()).trees
    assert len(trees[0].leaf_value) == 1 and trees[0].leaf_value[0] > 4.5  # what it is about
    assert len(trees) == 6 and all(len(tree.leaf_value) == 7 for tree in trees[1:])
    rows = edge_rows(booster, 4)
    for n_rows in (16, 17, 33, len(rows)):
        assert_identical(booster, rows[:n_rows])


def test_wrong_width_is_refused():
    forest = CompiledForest(train(3).model_to_string())
    with pytest.raises(ValueError, match=r"expected shape \(n, 6\)"):
        forest.predict(np.zeros((3, 5)))


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"objective": "binary"}, "objective binary"),
        ({"objective": "regression", "reg_sqrt": True}, "objective regression sqrt"),
        ({"linear_tree": True, "objective": "regression"}, "linear tree"),
    ],
)
def test_what_it_cannot_reproduce_is_refused(params, reason):
    with pytest.raises(UnsupportedModel, match=reason):
        parse_model(train(3, **params).model_to_string())


def test_categorical_splits_are_refused():
    x = training_rows(4)
    x[:, 0] = np.random.default_rng(0).integers(0, 8, len(x))
    label = (x[:, 0] % 3 == 0) * 1
    booster = lgb.train(
        {"objective": "regression", "verbosity": -1, "min_data_per_group": 5, "num_threads": 1},
        lgb.Dataset(x, label=label, categorical_feature=[0]),
        num_boost_round=3,
    )
    with pytest.raises(UnsupportedModel, match="categorical"):
        parse_model(booster.model_to_string())


def test_built_once_then_found_in_the_cache(monkeypatch):
    text = train(8).model_to_string()
    CompiledForest(text)

    def no_compiler(*_args):
        raise AssertionError("compiled again")

    monkeypatch.setattr(build, "_compile", no_compiler)
    CompiledForest(text)  # the same model: the library is cached


def test_the_avx2_build_has_its_own_cache_entry(tmp_path, monkeypatch):
    """The same model built for the machine and with AVX-512 turned off is two libraries in one
    cache: neither load is handed the other's (each kernel as ``builds_here`` says); a second
    load of each compiles nothing."""
    monkeypatch.setenv("RECSMITH_CACHE_DIR", str(tmp_path))
    text = train(8).model_to_string()
    kernels = [CompiledForest(text, narrowed=n).kernel for n in ((), NO_AVX512, ())]
    assert kernels == [builds_here(), builds_here(NO_AVX512), builds_here()]
    assert len(list(tmp_path.glob("forest-*.so"))) == 2

    def no_compiler(*_args):
        raise AssertionError("compiled again")

    monkeypatch.setattr(build, "_compile", no_compiler)
    assert CompiledForest(text, narrowed=NO_AVX512).kernel == builds_here(NO_AVX512)


def test_cache_writable_by_others_is_not_used(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    monkeypatch.setenv("RECSMITH_CACHE_DIR", str(shared))
    with pytest.raises(KernelUnavailable, match="writable by other users"):
        CompiledForest(train(3).model_to_string())


def ranker_features(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = training_rows(seed)
    label = (np.nan_to_num(x[:, 0]) > 0.3).astype(int)
    return x, label, np.full(len(x) // 50, 50)


def test_ranker_scores_compiled_and_same_as_lightgbm(monkeypatch, tmp_path):
    x, label, groups = ranker_features(9)
    config = RankerConfig(n_estimators=15, num_leaves=15, min_child_samples=5, num_threads=1)
    ranker = LambdaMARTRanker(config).fit(x, label, groups, [f"f{i}" for i in range(6)])
    assert ranker.compiled is None and ranker.uncompiled_reason is None  # compiled at load
    rows = edge_rows(ranker.booster, 4).astype(np.float32)
    expected = np.float32(ranker.booster.predict(rows, num_threads=1))
    assert np.array_equal(ranker.score(rows), expected)
    ranker.save(tmp_path / "ranker.txt")
    loaded = LambdaMARTRanker.load(tmp_path / "ranker.txt", config)
    assert np.array_equal(loaded.score(rows), expected)  # compiled or not yet: the same scores
    assert loaded.wait_compiled(120)
    assert loaded.compiled is not None and loaded.uncompiled_reason is None
    assert np.array_equal(loaded.score(rows), expected)


def test_ranker_without_a_compiler_scores_with_lightgbm_and_says_so(monkeypatch, tmp_path, caplog):
    x, label, groups = ranker_features(10)
    config = RankerConfig(n_estimators=5, num_leaves=7, min_child_samples=5, num_threads=1)
    LambdaMARTRanker(config).fit(x, label, groups, [f"f{i}" for i in range(6)]).save(
        tmp_path / "ranker.txt"
    )
    monkeypatch.delenv("CC", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no cc, no gcc
    ranker = LambdaMARTRanker.load(tmp_path / "ranker.txt", config)
    assert not ranker.wait_compiled(120)
    assert ranker.compiled is None
    assert ranker.uncompiled_reason is not None and "no C compiler" in ranker.uncompiled_reason
    assert "scoring with LightGBM's predict" in caplog.text
    rows = x[:200].astype(np.float32)
    assert np.array_equal(ranker.score(rows), np.float32(ranker.booster.predict(rows)))


def test_ranker_compiled_path_can_be_turned_off(monkeypatch, tmp_path):
    x, label, groups = ranker_features(10)
    config = RankerConfig(n_estimators=5, num_leaves=7, min_child_samples=5, num_threads=1)
    LambdaMARTRanker(config).fit(x, label, groups, [f"f{i}" for i in range(6)]).save(
        tmp_path / "ranker.txt"
    )
    monkeypatch.setenv("RECSMITH_COMPILED_TREES", "0")
    ranker = LambdaMARTRanker.load(tmp_path / "ranker.txt", config)
    assert not ranker.wait_compiled(0)  # nothing to wait for
    assert ranker.compiled is None and ranker.uncompiled_reason == "off"


def test_random_forest_mode_and_unreadable_text_are_refused():
    forest_mode = train(
        3, objective="regression", boosting="rf", bagging_freq=1, bagging_fraction=0.5
    )
    with pytest.raises(UnsupportedModel, match="averaged output"):
        parse_model(forest_mode.model_to_string())
    text = train(3).model_to_string()
    with pytest.raises(UnsupportedModel, match="unreadable model text"):
        parse_model(text.replace("max_feature_idx", "max_feature_index"))
    with pytest.raises(UnsupportedModel, match="no trees"):
        parse_model(text.split("\nTree=", 1)[0])


def test_a_foreign_library_under_the_cached_name_is_refused(tmp_path, monkeypatch):
    """What sits in the cache under a model's name is checked before use: a library without the
    entry points, or built for another feature count, is not called."""
    text = train(3).model_to_string()
    monkeypatch.setenv("RECSMITH_CACHE_DIR", str(tmp_path / "first"))
    CompiledForest(text)
    [name] = [p.name for p in (tmp_path / "first").glob("forest-*.so")]
    cc = build.compiler()
    assert cc is not None
    for planted, reason in (
        ("int unrelated;", "missing from the built library"),
        (
            "int forest_predict_f32(void *r, long n, void *o) { return 5; }\n"
            "int forest_predict_f64(void *r, long n, void *o) { return 5; }\n",
            "another feature count",
        ),
    ):
        where = tmp_path / reason.replace(" ", "_")
        where.mkdir(mode=0o700)
        build._compile(cc, planted, where / name)
        monkeypatch.setenv("RECSMITH_CACHE_DIR", str(where))
        with pytest.raises(KernelUnavailable, match=reason):
            CompiledForest(text)
