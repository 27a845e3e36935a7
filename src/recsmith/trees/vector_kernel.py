"""AVX-512 or AVX2 C for a model's float32 rows: 16 rows at a time, every node of a tree compared
for all 16 at once, no branch on the data; bit-identical to ``Booster.predict(raw_score=True)``.

Why: the nested ``if``s of ``codegen`` cost ~12 cycles a tree a row on the ranker's real
candidate features (100 trees of 31 leaves, BENCHMARKS §77), most of it mispredicted branches:
which way a candidate goes is data, not pattern. Here each tree is QuickScorer's bit vectors
(Lucchese et al., SIGIR 2015) turned sideways: a 32-bit word per row of the leaves still
reachable, numbered left to right; a node whose test sends a row right clears its left subtree's
leaves from that row's word (one masked AND for 16 rows); the exit leaf is the lowest bit left.
Half the CPU of the nested ``if``s with AVX-512, measured; the tree-major and compiler-flag
variants of the branchy code measured no gain (§77). With AVX2 (no mask registers, two vectors of
8 rows) 0.40–0.45× on random features, 0.76–0.94× on the ranker's real ones, whose branches
predict well (§91).

Exactness: a float32 ``x`` satisfies ``(double)x <= t`` exactly when ``x <= t32``, ``t32`` the
largest float32 not above ``t``; so the comparisons run on float32 lanes against such thresholds
and decide every row as LightGBM's double comparisons do (NaN, 0 and LightGBM's zero threshold
included, see ``codegen``). The leaf values stay doubles, gathered and summed per row in the
model's tree order. Compiled where the compiler targets AVX-512 (F and CD), else AVX2 (but not
Zen 1, see ``_Avx2``), i.e. built with ``-march=native`` on such a machine (``build``); elsewhere
``codegen``'s scalar entry serves.
"""

from __future__ import annotations

import math

import numpy as np

from recsmith.trees.lightgbm_text import Model, Tree

#: rows per block: one 512-bit vector of float32, two 256-bit ones
BLOCK_ROWS = 16
_WORD = 32  # leaves per bit-vector word (one int32 lane)
KZERO = float(np.float32(1e-35))  # LightGBM's kZeroThreshold: |x| <= it reads as 0
#: the kernel keeps a chunk's features on the stack (64 bytes a feature a block, at most
#: ``_CHUNK_BYTES``) and the block's ``cell`` row (64 bytes a feature): past this many features,
#: the nested ifs serve. 256 is at most 32 KiB, a quarter of the smallest thread stack in common
#: use (musl's 128 KiB), which the caller's own frames share
MAX_FEATURES = 256
#: each tree runs over a chunk of up to this many blocks before the next tree: the ranker's 100
#: trees are ~73 KB of code, past the decoded-instruction cache and L1i, and a kernel going
#: tree by tree over one block is bound by fetching and decoding that code for every block; a
#: tree's ~730 bytes decoded once serve the chunk's blocks. The chunk's features stay within
#: ``_CHUNK_BYTES`` of stack (and of L1d): a wide model has fewer blocks a chunk, down to one
_CHUNK_BLOCKS = 8
_CHUNK_BYTES = 16384


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
    instruction rather than a constant materialised into a register first (~20 % faster).
    Each tree reads them from its own first entries (``calls``): see ``Variant.tree``."""

    def __init__(self) -> None:
        self.thresholds: list[str] = []
        self.masks: list[str] = []
        self.leaves: list[str] = []
        #: each tree's call, its first threshold, mask and leaf passed as its tables
        self.calls: list[str] = []

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


class Variant:
    """One instruction set's kernel. The algorithm is shared (the nodes in LightGBM's order, the
    tables, the leaves' words, the exit leaf, the sums in tree order); a variant spells its steps
    and says how many vectors of rows a block holds (``halves``). AVX-512 keeps a node's rows in
    a mask register and narrows with one masked AND; AVX2 has no mask registers: all-ones lanes,
    an OR and an AND, and two vectors of 8 rows a block, which share each node's threshold and
    mask loads (0.87× the CPU of one vector a block, measured)."""

    guard = ""  # the predefined macros under which the compiler builds it
    name = ""  # what ``forest_kernel`` answers
    bits = 0  # vector width: the intrinsics' prefix (_mm512_) and types (__m512)
    halves = 1  # vectors of rows in a block of ``BLOCK_ROWS``
    node_type = ""  # what a node's test gives: the rows it marks
    marks_right = True  # the rows a node's test marks: those going right (else left)
    helpers = ""
    pad = 0  # doubles after ``LEAVES`` that a lookup of the last tree may read
    # the steps' C, formatted: ``test``, the rows a node marks (``x`` against the threshold at
    # ``t`` by ``pred``: ``predicates[0]`` where NaN rows are marked, else ``predicates[1]``);
    # ``is_zero``, the rows whose ``x`` is 0; ``either``, rows of ``a`` or ``b``; ``but_not``, of
    # ``b`` not in ``a``; ``narrow``, a statement ANDing word ``w`` with ``mask`` (the node's
    # left subtree's leaves cleared) in the rows that go right (``k``: the node's test)
    test = is_zero = either = but_not = narrow = ""
    predicates = ("", "")

    def lowest(self, w: str, base: int) -> str:
        """Each row's index of the lowest bit set in word ``w``, plus ``base``."""
        raise NotImplementedError

    def where_set(self, w: str, first: str, rest: str) -> str:
        """``first`` in the rows whose word ``w`` has a bit set, ``rest`` in the others."""
        raise NotImplementedError

    def add_leaves(self, leaf: str, v: str, words: int, acc: str) -> list[str]:
        """Lines adding ``v[leaf]`` of each row to its sum (``acc[0]``, ``acc[1]``)."""
        raise NotImplementedError

    @property
    def p(self) -> str:
        return f"_mm{self.bits}"

    def _goes(self, tree: Tree, node: int, t: str, half: int) -> str:
        """The rows of vector ``half`` that leave ``node`` the way ``marks_right`` says."""
        x = f"x[{int(tree.feature[node]) * self.halves + half}]"
        nan_marked = bool(tree.nan_left[node]) != self.marks_right
        pred = self.predicates[0] if nan_marked else self.predicates[1]
        goes = self.test.format(x=x, t=f"t + {t}", pred=pred)
        if bool(tree.zero_left[node]) != (tree.threshold[node] >= 0.0):  # missing type Zero
            zero = self.is_zero.format(x=x)
            zero_marked = bool(tree.zero_left[node]) != self.marks_right
            goes = (self.either if zero_marked else self.but_not).format(a=zero, b=goes)
        return goes

    def tree(self, i: int, tree: Tree, tables: _Tables) -> list[str]:
        """``tree_v{i}``: adds the tree's leaf value to each row's sum ``acc``. Its thresholds,
        masks and leaves are read at small offsets from pointers to the tree's first ones (its
        call, in ``tables.calls``), not from the tables' starts: the offset of every memory
        operand then fits one byte rather than four (EVEX scales it by the element), and the
        kernel, ~8,000 instructions a block of rows for the ranker's 100 trees, far past the
        decoded-instruction cache, is bound by how many bytes the CPU can fetch and decode."""
        p, b = self.p, self.bits
        order, left_span = _leaves_in_order(tree)
        t0, m0, at = len(tables.thresholds), len(tables.masks), len(tables.leaves)
        tables.calls.append(f"tree_v{i}(xs[j], accs[j], t + {t0}, m + {m0}, v + {at});")
        tables.leaves.extend(c_double(float(tree.leaf_value[leaf])) for leaf in order)
        lines = [
            f"static __attribute__((noinline)) void tree_v{i}("
            f"const __m{b} *x, __m{b}d *acc, const float *t, const int32_t *m, const double *v) {{"
        ]
        if len(order) == 1:
            one = f"{p}_set1_pd(v[0])"
            lines += [
                f"    acc[{a}] = {p}_add_pd(acc[{a}], {one});" for a in range(2 * self.halves)
            ]
            return [*lines, "}"]
        words = -(-len(order) // _WORD)
        halves = range(self.halves)

        def word(w: int, half: int) -> str:  # word w of vector `half`'s rows
            return f"w{w}" if half == 0 else f"w{w}_{half}"

        for w in range(words):
            n = min(_WORD, len(order) - _WORD * w)
            lines += [
                f"    __m{b}i {word(w, h)} = {p}_set1_epi32({_int32((1 << n) - 1)});"
                for h in halves
            ]
        for node in range(len(tree.left)):
            t = str(tables.threshold(float(tree.threshold[node])) - t0)
            start, end = left_span[node]
            masks = []
            for w in range(start // _WORD, (end - 1) // _WORD + 1):
                lo, hi = max(start - _WORD * w, 0), min(end - _WORD * w, _WORD)
                clear = ((1 << hi) - 1) ^ ((1 << lo) - 1)
                masks.append((w, tables.mask(~clear) - m0))
            for h in halves:  # the same threshold and masks: loaded once for all halves
                lines.append(f"    {{ const {self.node_type} k = {self._goes(tree, node, t, h)};")
                narrow = [self.narrow.format(w=word(w, h), mask=f"m[{j}]") for w, j in masks]
                lines += [f"      {statement};" for statement in narrow]
                lines.append("    }")
        for h in halves:  # the exit leaf: the lowest bit left, of the first word with one
            leaf = "leaf" if h == 0 else f"leaf_{h}"
            last = words - 1
            lines.append(f"    __m{b}i {leaf} = {self.lowest(word(last, h), _WORD * last)};")
            for w in reversed(range(words - 1)):
                first = self.lowest(word(w, h), _WORD * w)
                lines.append(f"    {leaf} = {self.where_set(word(w, h), first, leaf)};")
            lines += self.add_leaves(leaf, "v", words, "acc" if h == 0 else f"acc + {2 * h}")
        return [*lines, "}"]

    def source(self, model: Model) -> str:
        """C defining ``forest_predict_f32`` (as ``codegen.c_source``'s entry: float32 rows
        [n_rows × n_features] in either layout, row ``i``'s feature ``f`` at ``rows[i * row_step
        + f * feature_step]``; raw scores to ``out``; returns the feature count), to be compiled
        only where ``guard`` holds."""
        tables = _Tables()
        trees = [line for i, tree in enumerate(model.trees) for line in self.tree(i, tree, tables)]
        calls = "\n".join(
            f"        for (int j = 0; j < blocks; j++) {call}" for call in tables.calls
        )
        leaves = [*tables.leaves, *["0.0"] * self.pad]
        return "\n".join(
            [
                "#include <immintrin.h>",
                f"static const float THRESHOLDS[] = {{{', '.join(tables.thresholds) or '0'}}};",
                f"static const int32_t MASKS[] = {{{', '.join(tables.masks) or '0'}}};",
                f"static const double LEAVES[] = {{{', '.join(leaves)}}};",
                self.helpers,
                *trees,
                self._entry(model.n_features, calls),
            ]
        )

    def _entry(self, n_features: int, calls: str) -> str:
        p, lanes, halves = self.p, BLOCK_ROWS // self.halves, self.halves
        chunk = max(1, min(_CHUNK_BLOCKS, _CHUNK_BYTES // (4 * BLOCK_ROWS * n_features)))
        per_acc = lanes // 2  # doubles in a vector
        if halves == 1:
            layout = f"x[f] holds feature f of the block's {BLOCK_ROWS} rows"
        else:
            layout = f"x[{halves} * f + h] holds feature f of rows {lanes}h.. of the block"
        loads = [
            f"                x[{f'{halves} * f + {h}' if halves > 1 else 'f'}] = "
            f"{p}_load_ps(cell + f * {BLOCK_ROWS}{f' + {lanes * h}' if h else ''});"
            for h in range(halves)
        ]
        stores = [
            f"            {p}_store_pd(sums{f' + {per_acc * a}' if a else ''}, accs[j][{a}]);"
            for a in range(2 * halves)
        ]
        return ENTRY.format(
            n_features=n_features,
            calls=calls,
            rows=BLOCK_ROWS,
            chunk=chunk,
            bits=self.bits,
            align=self.bits // 8,
            vectors=n_features * halves,
            layout=layout,
            loads="\n".join(loads),
            accs=2 * halves,
            zero=f"{p}_setzero_pd()",
            stores="\n".join(stores),
        )


class _Avx512(Variant):
    guard = "defined(__AVX512F__) && defined(__AVX512CD__)"
    name = "avx512"
    bits = 512
    halves = 1
    node_type = "__mmask16"
    marks_right = True
    pad = 31  # LOOKUP32 reads 32 values from a tree's first leaf: the last tree's stays inside
    helpers = """
/* the rows (of 16) that go right: x compared with the threshold at p broadcast from memory, in
   one instruction (the intrinsic makes the compiler load and broadcast it first: ~12 % slower) */
#define RIGHT(x, p, pred) ({ __mmask16 k_; \\
    __asm__("vcmpps %3, %2%{1to16%}, %1, %0" : "=k"(k_) : "v"(x), "m"(*(p)), "i"(pred)); k_; })
/* w &= the mask at p (broadcast from memory) in the rows of k, in place: with the intrinsic's
   merge the compiler copies w to another register at most nodes, 6 bytes more to fetch and
   decode, which bounds the kernel (see Variant.tree; ~0.92x its CPU without the copies) */
#define NARROW16(w, k, p) \\
    __asm__("vpandd %2%{1to16%}, %0, %0%{%1%}" : "+v"(w) : "Yk"(k), "m"(*(p)))
/* v[i] for 8 indices i < 32 (v holds 32 doubles) */
static inline __attribute__((always_inline)) __m512d LOOKUP32(__m256i i32, const double *v) {
    const __m512i i = _mm512_cvtepu32_epi64(i32);
    const __m512d lo = _mm512_permutex2var_pd(_mm512_loadu_pd(v), i, _mm512_loadu_pd(v + 8));
    const __m512d hi = _mm512_permutex2var_pd(_mm512_loadu_pd(v + 16), i, _mm512_loadu_pd(v + 24));
    return _mm512_mask_blend_pd(_mm512_test_epi64_mask(i, _mm512_set1_epi64(16)), lo, hi);
}
"""

    test = "RIGHT({x}, {t}, {pred})"
    # right when not (x <= t): NaN goes right (unordered compare), or when x > t: NaN goes left
    predicates = ("_CMP_NLE_UQ", "_CMP_GT_OQ")
    is_zero = "_mm512_cmp_ps_mask({x}, _mm512_setzero_ps(), _CMP_EQ_OQ)"
    either = "_kor_mask16({a}, {b})"
    but_not = "_kandn_mask16({a}, {b})"
    narrow = "NARROW16({w}, k, &{mask})"

    def lowest(self, w: str, base: int) -> str:  # 31 - lzcnt(w & -w)
        low = f"_mm512_and_si512({w}, _mm512_sub_epi32(_mm512_setzero_si512(), {w}))"
        return f"_mm512_sub_epi32(_mm512_set1_epi32({base + 31}), _mm512_lzcnt_epi32({low}))"

    def where_set(self, w: str, first: str, rest: str) -> str:
        return f"_mm512_mask_mov_epi32({rest}, _mm512_test_epi32_mask({w}, {w}), {first})"

    def add_leaves(self, leaf: str, v: str, words: int, acc: str) -> list[str]:
        # up to 32 leaves: picked from four registers (two permutes, a blend), else gathered
        lookup = f"LOOKUP32({{}}, {v})" if words == 1 else f"_mm512_i32gather_pd({{}}, {v}, 8)"
        low, high = f"_mm512_castsi512_si256({leaf})", f"_mm512_extracti64x4_epi64({leaf}, 1)"
        return [
            f"    {acc}[0] = _mm512_add_pd({acc}[0], {lookup.format(low)});",
            f"    {acc}[1] = _mm512_add_pd({acc}[1], {lookup.format(high)});",
        ]


class _Avx2(Variant):
    # not for Zen 1 (``-march=znver1``, what ``-march=native`` means there): it splits each 256-bit
    # operation in two, and llvm-mca puts this kernel at ~1.6x its cycles on Zen 2 or Haswell
    # there, likely slower than the nested ifs on the ranker's real features (estimated, not
    # measured: BENCHMARKS §91)
    guard = "defined(__AVX2__) && !defined(__znver1)"
    name = "avx2"
    bits = 256
    halves = 2
    node_type = "__m256i"
    marks_right = False  # narrowing the rows that go right would cost a NOT: mark the others
    pad = 0  # each row's own leaf alone is read
    helpers = """
/* the rows (of 8) that go left, as all-ones lanes: the threshold at p compared with x (t >= x:
   x <= t), so that x, not the broadcast, is the compare's memory operand (0.97x the CPU) */
#define LEFT(x, p, pred) _mm256_castps_si256(_mm256_cmp_ps(_mm256_broadcast_ss(p), (x), (pred)))
/* w &= k | mask, then w opaque: left to itself, the compiler regroups a tree's ANDs, hoists all
   its compares and spills them (0.84x the CPU with the barrier, measured) */
#define NARROW(w, mask) do { \\
    w = _mm256_and_si256(w, _mm256_or_si256(k, _mm256_set1_epi32(mask))); \\
    __asm__("" : "+x"(w)); } while (0)
/* each lane's lowest set bit's index, plus base: that bit alone converts to float32 exactly, a
   power of two whose exponent field is the index + 127 (bit 31 converts to -2^31: the sign
   masked off) */
static inline __attribute__((always_inline)) __m256i LOWEST(__m256i w, int base) {
    const __m256i bit = _mm256_and_si256(w, _mm256_sub_epi32(_mm256_setzero_si256(), w));
    const __m256i e = _mm256_srli_epi32(_mm256_castps_si256(_mm256_cvtepi32_ps(bit)), 23);
    const __m256i index = _mm256_and_si256(e, _mm256_set1_epi32(255));
    return _mm256_sub_epi32(index, _mm256_set1_epi32(127 - base));
}
/* v[leaf] added to each row's sum, read one by one: AVX2's gathers are slow on the CPUs this
   kernel is for (microcode-mitigated on Intel's Skylake to Tiger Lake, many uops on AMD's Zen 2) */
static inline __attribute__((always_inline)) void ADD_LEAVES(
    __m256d *acc, __m256i leaf, const double *v) {
    int32_t i[8] __attribute__((aligned(32)));
    _mm256_store_si256((__m256i *)i, leaf);
    acc[0] = _mm256_add_pd(acc[0], _mm256_set_pd(v[i[3]], v[i[2]], v[i[1]], v[i[0]]));
    acc[1] = _mm256_add_pd(acc[1], _mm256_set_pd(v[i[7]], v[i[6]], v[i[5]], v[i[4]]));
}
"""

    test = "LEFT({x}, {t}, {pred})"
    # left when t >= x (x <= t: NaN goes right), or when not (t < x): NaN goes left
    predicates = ("_CMP_NLT_UQ", "_CMP_GE_OQ")
    is_zero = "_mm256_castps_si256(_mm256_cmp_ps({x}, _mm256_setzero_ps(), _CMP_EQ_OQ))"
    either = "_mm256_or_si256({a}, {b})"
    but_not = "_mm256_andnot_si256({a}, {b})"
    narrow = "NARROW({w}, {mask})"  # a row going left keeps all its bits

    def lowest(self, w: str, base: int) -> str:
        return f"LOWEST({w}, {base})"

    def where_set(self, w: str, first: str, rest: str) -> str:
        zero = f"_mm256_cmpeq_epi32({w}, _mm256_setzero_si256())"
        return f"_mm256_blendv_epi8({first}, {rest}, {zero})"

    def add_leaves(self, leaf: str, v: str, words: int, acc: str) -> list[str]:
        return [f"    ADD_LEAVES({acc}, {leaf}, {v});"]


AVX512 = _Avx512()
AVX2 = _Avx2()
#: the vector kernels, the preferred first
VARIANTS = (AVX512, AVX2)

ENTRY = """
static const void *volatile TABLES[3] = {{THRESHOLDS, MASKS, LEAVES}};

int32_t forest_predict_f32(
    const float *rows, int64_t n_rows, int64_t row_step, int64_t feature_step, double *out) {{
    const float *t = TABLES[0];
    const int32_t *m = TABLES[1];
    const double *v = TABLES[2];
    __m{bits} xs[{chunk}][{vectors}];  /* a chunk's blocks, feature-major: {layout} */
    __m{bits}d accs[{chunk}][{accs}];
    float cell[{rows} * {n_features}] __attribute__((aligned({align})));
    double sums[{rows}] __attribute__((aligned({align})));
    for (int64_t c = 0; c < n_rows; c += {chunk} * {rows}) {{
        const int64_t left = n_rows - c;
        const int blocks = left < {chunk} * {rows} ? (int)((left + {rows} - 1) / {rows}) : {chunk};
        for (int j = 0; j < blocks; j++) {{
            const int64_t b = c + (int64_t)j * {rows};
            const int n = n_rows - b < {rows} ? (int)(n_rows - b) : {rows};
            const float *src = rows + b * row_step;
            __m{bits} *x = xs[j];
            for (int f = 0; f < {n_features}; f++) {{
                const float *column = src + f * feature_step;
                if (n == {rows} && row_step == 1) {{  /* feature-major rows: one contiguous run */
                    for (int r = 0; r < {rows}; r++) {{
                        const float value = column[r];
                        cell[f * {rows} + r] = fabsf(value) <= (float)KZERO ? 0.0f : value;
                    }}
                }} else {{
                    for (int r = 0; r < {rows}; r++) {{  /* rows past the end read as 0 */
                        const float value = r < n ? column[r * row_step] : 0.0f;
                        cell[f * {rows} + r] = fabsf(value) <= (float)KZERO ? 0.0f : value;
                    }}
                }}
{loads}
            }}
            for (int a = 0; a < {accs}; a++) accs[j][a] = {zero};
        }}
{calls}
        for (int j = 0; j < blocks; j++) {{
            const int64_t b = c + (int64_t)j * {rows};
            const int n = n_rows - b < {rows} ? (int)(n_rows - b) : {rows};
{stores}
            for (int r = 0; r < n; r++) out[b + r] = sums[r];
        }}
    }}
    return {n_features};
}}
"""
