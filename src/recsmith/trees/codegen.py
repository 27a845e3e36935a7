"""C source for one LightGBM model: each tree as nested ``if``s over constants, summed in the
model's order into a float64, so the scores are bit-identical to ``Booster.predict``.

Why generated code: LightGBM's predict, for the few hundred rows of one request, walks node
arrays row by row with a per-row copy of the features (~3 µs a row for 100 trees of 31 leaves,
BENCHMARKS §3). Compiled comparisons against literal thresholds, with the likelier branch laid
out first (from the training counts the model file keeps), cost a third of that. A generic
node-array evaluator in C (QuickScorer's bit vectors) was tried first and measured only 1.2–1.5×
faster on the ranker's real features.
On float32 rows, where the compiler targets AVX-512 or AVX2, ``vector_kernel``'s generated code
replaces the nested ``if``s (the same bit vectors, unrolled over constants and 16 rows at once:
half the CPU of the ``if``s with AVX-512, whose cost is mostly mispredicted branches); float64
rows, and other CPUs, keep the ``if``s.

LightGBM's split rule (``tree.h``, ``NumericalDecision``), reproduced exactly:
  - an input with |x| <= kZeroThreshold is 0 (LightGBM drops such values from dense rows);
  - NaN goes the way ``lightgbm_text`` decided per node (``nan_left``), 0 likewise (``zero_left``);
  - any other value goes left when x <= threshold.
"""

from __future__ import annotations

from recsmith.trees.lightgbm_text import Model, Tree
from recsmith.trees.vector_kernel import MAX_FEATURES, VARIANTS, c_double

PREAMBLE = """\
#include <math.h>
#include <stdint.h>
#define KZERO 1.0000000180025095e-35 /* LightGBM's kZeroThreshold, (double)1e-35f */
#define LIKELY(c) __builtin_expect(!!(c), 1)
#define UNLIKELY(c) __builtin_expect(!!(c), 0)
"""

# the rows' loop, once per input type: normalise a row as LightGBM does, then add the trees
ENTRY = """
int32_t forest_predict_{suffix}(
    const {ctype} *rows, int64_t n_rows, int64_t row_step, int64_t feature_step, double *out) {{
    double x[{n_features}];
    for (int64_t i = 0; i < n_rows; i++) {{
        const {ctype} *row = rows + i * row_step;
        for (int f = 0; f < {n_features}; f++) {{
            const double v = (double)row[f * feature_step];
            x[f] = fabs(v) <= KZERO ? 0.0 : v;
        }}
        out[i] = forest_row(x);
    }}
    return {n_features};
}}
"""

KERNEL_FN = 'const char *forest_kernel(void) {{ return "{name}"; }}'
#: what ``forest_kernel`` answers for the nested ``if``s (the vector kernels: ``Variant.name``)
NESTED_IFS = "ifs"


def _condition(tree: Tree, node: int) -> str:
    """True when a row goes left at ``node``."""
    x = f"x[{int(tree.feature[node])}]"
    t = c_double(float(tree.threshold[node]))
    # NaN fails every comparison: `x <= t` sends it right, `!(x > t)` left
    cond = f"!({x} > {t})" if tree.nan_left[node] else f"{x} <= {t}"
    if bool(tree.zero_left[node]) != (tree.threshold[node] >= 0.0):  # missing type Zero
        cond = f"({x} == 0.0 ? {int(bool(tree.zero_left[node]))} : {cond})"
    return cond


def _count(tree: Tree, child: int) -> int:
    return int(tree.leaf_count[~child] if child < 0 else tree.inner_count[child])


def _body(tree: Tree, child: int, indent: str) -> list[str]:
    """``return`` the leaf value reached from ``child`` (a leaf when < 0)."""
    if child < 0:
        return [f"{indent}return {c_double(float(tree.leaf_value[~child]))};"]
    left, right = int(tree.left[child]), int(tree.right[child])
    hint = "LIKELY" if _count(tree, left) >= _count(tree, right) else "UNLIKELY"
    return [
        f"{indent}if ({hint}({_condition(tree, child)})) {{",
        *_body(tree, left, indent + "    "),
        f"{indent}}} else {{",
        *_body(tree, right, indent + "    "),
        f"{indent}}}",
    ]


def c_source(model: Model, vectorised: bool = True) -> str:
    """The whole translation unit: ``forest_predict_f32`` and ``forest_predict_f64`` each take
    ``rows`` [n_rows × n_features], row ``i``'s feature ``f`` at ``rows[i * row_step + f *
    feature_step]`` (row-major: ``n_features, 1``; feature-major, as ``candidate_features``
    builds them: ``1, n_rows``), and write the raw scores to ``out``; they return the feature
    count they were generated for (a check against loading the wrong library).
    ``forest_kernel`` names the float32 entry compiled: ``vector_kernel``'s AVX-512 variant or
    else its AVX2 one, the first the compiler targets (when ``vectorised`` and the model has at
    most ``MAX_FEATURES``), else ``NESTED_IFS``, row by row."""
    parts = [PREAMBLE]
    for i, tree in enumerate(model.trees):
        root = 0 if len(tree.left) else -1  # a one-leaf tree is its leaf
        parts.append(f"static double tree_{i}(const double *x) {{")
        parts.extend(_body(tree, root, "    "))
        parts.append("}")
    parts.append("static double forest_row(const double *x) {\n    double acc = 0.0;")
    parts.extend(f"    acc += tree_{i}(x);" for i in range(len(model.trees)))
    parts.append("    return acc;\n}")
    n_features = model.n_features
    parts.append(ENTRY.format(suffix="f64", ctype="double", n_features=n_features))
    scalar = ENTRY.format(suffix="f32", ctype="float", n_features=n_features)
    if not vectorised or n_features > MAX_FEATURES:
        return "\n".join([*parts, scalar, KERNEL_FN.format(name=NESTED_IFS)])
    vector = []
    for variant in VARIANTS:  # the first whose instructions the compiler targets
        vector += [
            f"#{'el' if vector else ''}if {variant.guard}",
            variant.source(model),
            KERNEL_FN.format(name=variant.name),
        ]
    ifs = KERNEL_FN.format(name=NESTED_IFS)
    return "\n".join([*parts, *vector, "#else", scalar, ifs, "#endif"])
