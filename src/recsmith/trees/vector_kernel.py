"""AVX-512 C for a model's float32 rows: 16 rows at a time, every node of a tree compared for all
16 at once, no branch on the data; bit-identical to ``Booster.predict(raw_score=True)``.

Why: the nested ``if``s of ``codegen`` cost ~12 cycles a tree a row on the ranker's real
candidate features (100 trees of 31 leaves, BENCHMARKS §77), most of it mispredicted branches:
which way a candidate goes is data, not pattern. Here each tree is QuickScorer's bit vectors
(Lucchese et al., SIGIR 2015) turned sideways: a 32-bit word per row of the leaves still
reachable, numbered left to right; a node whose test sends a row right clears its left subtree's
leaves from that row's word (one masked AND for 16 rows); the exit leaf is the lowest bit left.
Half the CPU of the nested ``if``s, measured; the tree-major and compiler-flag variants of the
branchy code measured no gain (§77).

Exactness: a float32 ``x`` satisfies ``(double)x <= t`` exactly when ``x <= t32``, ``t32`` the
largest float32 not above ``t``; so the comparisons run on float32 lanes against such thresholds
and decide every row as LightGBM's double comparisons do (NaN, 0 and LightGBM's zero threshold
included, see ``codegen``). The leaf values stay doubles, gathered and summed per row in the
model's tree order. Compiled only where the compiler targets AVX-512 (F and CD), i.e. built with
``-march=native`` on such a machine (``build``); elsewhere ``codegen``'s scalar entry serves.
"""

from __future__ import annotations

import math

import numpy as np

from recsmith.trees.lightgbm_text import Model, Tree

#: rows per block: one 512-bit vector of float32
BLOCK_ROWS = 16
_WORD = 32  # leaves per bit-vector word (one int32 lane)
KZERO = float(np.float32(1e-35))  # LightGBM's kZeroThreshold: |x| <= it reads as 0
#: the kernel keeps a block's features on the stack (128 bytes a feature): past this many, the
#: nested ifs serve. 256 is 32 KiB, a quarter of the smallest thread stack in common use (musl's
#: 128 KiB), which the caller's own frames share
MAX_FEATURES = 256


def c_double(value: float) -> str:
    """A C double literal that parses back to exactly ``value`` (``repr`` is the shortest
    round-trip decimal)."""
    if math.isinf(value):
        return "INFINITY" if value > 0 else "(-INFINITY)"
    if math.isnan(value):
        raise ValueError("a NaN threshold or leaf value")
    return repr(float(value))


def float32_at_most(value: float) -> float:
    """The largest float32 not above ``value`` (-inf below float32's range; FLT_MAX for a
    finite value above it): ``x <= value`` and ``x <= float32_at_most(value)`` agree on every
    float32 ``x``."""
    if math.isnan(value):
        raise ValueError("a NaN threshold")
    with np.errstate(over="ignore"):
        near = np.float32(value)
    if float(near) > value:
        near = np.nextafter(near, np.float32(-np.inf))
    return float(near)


def _leaves_in_order(tree: Tree) -> tuple[list[int], dict[int, tuple[int, int]]]:
    """The leaves left to right, and for each inner node the span [first, end) of its left
    subtree's leaves in that order (a subtree's leaves are contiguous)."""
    order: list[int] = []
    left_span: dict[int, tuple[int, int]] = {}
    stack: list[tuple[int, bool]] = [(0 if len(tree.left) else -1, False)]
    first: dict[int, int] = {}
    while stack:  # iterative in-order walk: trees can be deeper than Python's recursion likes
        node, done = stack.pop()
        if node < 0:
            order.append(~node)
        elif not done:
            first[node] = len(order)
            stack += [(int(tree.right[node]), False), (node, True), (int(tree.left[node]), False)]
        else:  # the left subtree is done: its leaves are first[node]..len(order)
            left_span[node] = (first[node], len(order))
    return order, left_span


class _Tables:
    """The constants every tree reads, gathered into three arrays: read through a pointer the
    compiler cannot see into, each comparison and mask is a broadcast memory operand of one
    instruction rather than a constant materialised into a register first (~20 % faster)."""

    def __init__(self) -> None:
        self.thresholds: list[str] = []
        self.masks: list[str] = []
        self.leaves: list[str] = []

    def threshold(self, value: float) -> int:
        """Index of a float32 threshold deciding as ``value`` does on the kernel's rows, which
        hold 0 or values beyond ±``KZERO`` (``float32_at_most``; one within ±``KZERO`` becomes
        0 or -``KZERO``, which decide those rows alike: never a subnormal, which a process with
        denormals-are-zero set would compare as 0)."""
        near_zero = 0.0 if value >= 0.0 else -KZERO
        t32 = near_zero if abs(value) <= KZERO else float32_at_most(value)
        self.thresholds.append(f"{t32!r}f" if math.isfinite(t32) else c_double(t32))
        return len(self.thresholds) - 1

    def mask(self, keep: int) -> int:
        """Index of the 32-bit word ``keep`` (bits set: the leaves a masked AND keeps)."""
        self.masks.append(str(_int32(keep)))
        return len(self.masks) - 1


def _int32(bits: int) -> int:
    """The int32 with the low 32 bits of ``bits``."""
    bits &= (1 << _WORD) - 1
    return bits - (1 << _WORD) if bits >= 1 << (_WORD - 1) else bits


def _go_right(tree: Tree, node: int, t: str) -> str:
    """The 16 rows' mask of those that leave ``node`` to the right."""
    x = f"x[{int(tree.feature[node])}]"
    # right when not (x <= t): NaN goes right (unordered compare), or when x > t: NaN goes left
    pred = "_CMP_GT_OQ" if tree.nan_left[node] else "_CMP_NLE_UQ"
    right = f"RIGHT({x}, t + {t}, {pred})"
    if bool(tree.zero_left[node]) != (tree.threshold[node] >= 0.0):  # missing type Zero
        zero = f"_mm512_cmp_ps_mask({x}, _mm512_setzero_ps(), _CMP_EQ_OQ)"
        combine = "_kandn_mask16" if tree.zero_left[node] else "_kor_mask16"
        right = f"{combine}({zero}, {right})"
    return right


def _tree(i: int, tree: Tree, tables: _Tables) -> list[str]:
    """``tree_v{i}``: adds the tree's leaf value to each of the 16 rows' sums ``acc``."""
    order, left_span = _leaves_in_order(tree)
    at = len(tables.leaves)
    tables.leaves.extend(c_double(float(tree.leaf_value[leaf])) for leaf in order)
    head = (
        f"static __attribute__((noinline)) void tree_v{i}("
        "const __m512 *x, __m512d *acc, const float *t, const int32_t *m, const double *v) {"
    )
    if len(order) == 1:
        one = f"_mm512_set1_pd(v[{at}])"
        return [
            head,
            f"    acc[0] = _mm512_add_pd(acc[0], {one});",
            f"    acc[1] = _mm512_add_pd(acc[1], {one});",
            "}",
        ]
    words = -(-len(order) // _WORD)
    lines = [head]
    for w in range(words):
        n = min(_WORD, len(order) - _WORD * w)
        lines.append(f"    __m512i w{w} = _mm512_set1_epi32({_int32((1 << n) - 1)});")
    for node in range(len(tree.left)):
        right = _go_right(tree, node, str(tables.threshold(float(tree.threshold[node]))))
        lines.append(f"    {{ const __mmask16 k = {right};")
        start, end = left_span[node]
        for w in range(start // _WORD, (end - 1) // _WORD + 1):
            lo, hi = max(start - _WORD * w, 0), min(end - _WORD * w, _WORD)
            clear = ((1 << hi) - 1) ^ ((1 << lo) - 1)
            j = tables.mask(~clear)
            lines.append(
                f"      w{w} = _mm512_mask_and_epi32(w{w}, k, w{w}, _mm512_set1_epi32(m[{j}]));"
            )
        lines.append("    }")

    # the exit leaf: the lowest bit left, of the first word with one (31 - lzcnt(w & -w))
    def lowest(w: int) -> str:
        low = f"_mm512_and_si512(w{w}, _mm512_sub_epi32(_mm512_setzero_si512(), w{w}))"
        return f"_mm512_sub_epi32(_mm512_set1_epi32({_WORD * w + 31}), _mm512_lzcnt_epi32({low}))"

    lines.append(f"    __m512i leaf = {lowest(words - 1)};")
    for w in reversed(range(words - 1)):
        has = f"_mm512_test_epi32_mask(w{w}, w{w})"
        lines.append(f"    leaf = _mm512_mask_mov_epi32(leaf, {has}, {lowest(w)});")
    # up to 32 leaves: picked from four registers (two permutes, a blend), else gathered
    lookup = ("LOOKUP32({}, v + %d)" if words == 1 else "_mm512_i32gather_pd({}, v + %d, 8)") % at
    low, high = "_mm512_castsi512_si256(leaf)", "_mm512_extracti64x4_epi64(leaf, 1)"
    lines += [
        f"    acc[0] = _mm512_add_pd(acc[0], {lookup.format(low)});",
        f"    acc[1] = _mm512_add_pd(acc[1], {lookup.format(high)});",
        "}",
    ]
    return lines


HELPERS = """
/* the rows (of 16) that go right: x compared with the threshold at p broadcast from memory, in
   one instruction (the intrinsic makes the compiler load and broadcast it first: ~12 % slower) */
#define RIGHT(x, p, pred) ({ __mmask16 k_; \\
    __asm__("vcmpps %3, %2%{1to16%}, %1, %0" : "=k"(k_) : "v"(x), "m"(*(p)), "i"(pred)); k_; })
/* v[i] for 8 indices i < 32 (v holds 32 doubles) */
static inline __attribute__((always_inline)) __m512d LOOKUP32(__m256i i32, const double *v) {
    const __m512i i = _mm512_cvtepu32_epi64(i32);
    const __m512d lo = _mm512_permutex2var_pd(_mm512_loadu_pd(v), i, _mm512_loadu_pd(v + 8));
    const __m512d hi = _mm512_permutex2var_pd(_mm512_loadu_pd(v + 16), i, _mm512_loadu_pd(v + 24));
    return _mm512_mask_blend_pd(_mm512_test_epi64_mask(i, _mm512_set1_epi64(16)), lo, hi);
}
"""

ENTRY = """
static const void *volatile TABLES[3] = {{THRESHOLDS, MASKS, LEAVES}};

int32_t forest_predict_f32(const float *rows, int64_t n_rows, double *out) {{
    const float *t = TABLES[0];
    const int32_t *m = TABLES[1];
    const double *v = TABLES[2];
    __m512 x[{n_features}];  /* feature-major: x[f] holds feature f of the block's 16 rows */
    float cell[16 * {n_features}] __attribute__((aligned(64)));
    double sums[16] __attribute__((aligned(64)));
    for (int64_t b = 0; b < n_rows; b += 16) {{
        const int n = n_rows - b < 16 ? (int)(n_rows - b) : 16;
        const float *src = rows + b * {n_features};
        for (int f = 0; f < {n_features}; f++) {{
            for (int r = 0; r < 16; r++) {{  /* rows past the end read as 0, never written */
                const float value = r < n ? src[r * {n_features} + f] : 0.0f;
                cell[f * 16 + r] = fabsf(value) <= (float)KZERO ? 0.0f : value;
            }}
            x[f] = _mm512_load_ps(cell + f * 16);
        }}
        __m512d acc[2] = {{_mm512_setzero_pd(), _mm512_setzero_pd()}};
{calls}
        _mm512_store_pd(sums, acc[0]);
        _mm512_store_pd(sums + 8, acc[1]);
        for (int r = 0; r < n; r++) out[b + r] = sums[r];
    }}
    return {n_features};
}}
"""


def avx512_source(model: Model) -> str:
    """C defining ``forest_predict_f32`` (as ``codegen``'s entry: rows [n_rows × n_features]
    float32, row-major; raw scores to ``out``; returns the feature count), to be compiled only
    where ``__AVX512F__`` and ``__AVX512CD__`` are defined."""
    tables = _Tables()
    trees = [line for i, tree in enumerate(model.trees) for line in _tree(i, tree, tables)]
    calls = "\n".join(f"        tree_v{i}(x, acc, t, m, v);" for i in range(len(model.trees)))
    return "\n".join(
        [
            "#include <immintrin.h>",
            f"static const float THRESHOLDS[] = {{{', '.join(tables.thresholds) or '0'}}};",
            f"static const int32_t MASKS[] = {{{', '.join(tables.masks) or '0'}}};",
            # LOOKUP32 reads 32 values from a tree's first leaf: the last tree's read stays inside
            f"static const double LEAVES[] = {{{', '.join([*tables.leaves, *['0.0'] * 31])}}};",
            HELPERS,
            *trees,
            ENTRY.format(n_features=model.n_features, calls=calls),
        ]
    )
