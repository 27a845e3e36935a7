"""A LightGBM model's text format (``Booster.model_to_string``) read into arrays, for
``codegen``.

Read from the text rather than ``dump_model``'s JSON because the JSON clamps infinite thresholds
to ±1e300; the text keeps every threshold and leaf value to 17 significant digits, so the arrays
hold the very doubles LightGBM predicts with. Only what the generated code reproduces exactly is
accepted
(numerical splits, one tree per iteration, no linear trees, an objective whose prediction is the
raw sum); anything else, or text it cannot read, raises ``UnsupportedModel`` and the caller keeps
LightGBM's own predict.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# objectives whose Booster.predict is the raw sum of the trees (no sigmoid, softmax or exp)
RAW_OBJECTIVES = frozenset({"lambdarank", "rank_xendcg", "regression", "regression_l1", "huber"})
# ("regression sqrt" squares its prediction: refused below)

_CATEGORICAL = 1
_DEFAULT_LEFT = 2
_MISSING_ZERO = 1


class UnsupportedModel(ValueError):
    """The model uses something the generated code does not reproduce exactly (says what)."""


@dataclass(frozen=True)
class Tree:
    """One tree's internal nodes (LightGBM's numbering; a child < 0 is the leaf ``~child``) with
    the direction each takes for NaN and for 0 already decided (see ``codegen``)."""

    feature: np.ndarray  # int64 [inner]
    threshold: np.ndarray  # float64 [inner]
    nan_left: np.ndarray  # bool [inner]
    zero_left: np.ndarray  # bool [inner]
    left: np.ndarray  # int64 [inner]
    right: np.ndarray  # int64 [inner]
    leaf_value: np.ndarray  # float64 [leaves]
    inner_count: np.ndarray  # int64 [inner]: training rows through each node (0 if unknown)
    leaf_count: np.ndarray  # int64 [leaves]


@dataclass(frozen=True)
class Model:
    n_features: int
    trees: list[Tree]


def _header(text: str) -> dict[str, str]:
    head = text.split("\nTree=", 1)[0]
    return dict(line.split("=", 1) for line in head.splitlines() if "=" in line)


def _blocks(text: str) -> list[dict[str, str]]:
    if "\nTree=" not in text:
        return []
    body = text.split("\nTree=", 1)[1].split("\nend of trees", 1)[0]
    return [
        dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        for block in body.split("\nTree=")
    ]


def _ints(block: dict[str, str], key: str) -> np.ndarray:
    return np.array(block.get(key, "").split(), dtype=np.int64)


def parse_model(text: str) -> Model:
    """The trees of a LightGBM text model; ``UnsupportedModel`` names what it cannot take."""
    try:
        return _parse(text)
    except (KeyError, ValueError, IndexError) as exc:
        if isinstance(exc, UnsupportedModel):
            raise
        raise UnsupportedModel(f"unreadable model text ({type(exc).__name__}: {exc})") from exc


def _parse(text: str) -> Model:
    header = _header(text)
    objective = header.get("objective", "").split()
    if not objective or objective[0] not in RAW_OBJECTIVES or "sqrt" in objective:
        raise UnsupportedModel(f"objective {' '.join(objective) or '(none)'} is not the raw sum")
    if header.get("num_tree_per_iteration", "1") != "1":
        raise UnsupportedModel("more than one tree per iteration (multiclass)")
    if "average_output" in text.split("\nTree=", 1)[0].splitlines():  # a flag line, no "="
        raise UnsupportedModel("averaged output (random forest mode)")
    trees = [_tree(i, block) for i, block in enumerate(_blocks(text))]
    if not trees:
        raise UnsupportedModel("the model has no trees")
    return Model(n_features=int(header["max_feature_idx"]) + 1, trees=trees)


def _tree(i: int, block: dict[str, str]) -> Tree:
    if block.get("is_linear", "0") != "0":
        raise UnsupportedModel(f"tree {i} is a linear tree")
    if block.get("num_cat", "0") != "0":
        raise UnsupportedModel(f"tree {i} has categorical splits")
    n_leaves = int(block["num_leaves"])
    leaf_value = np.array(block["leaf_value"].split(), dtype=np.float64)
    feature = _ints(block, "split_feature")
    threshold = np.array(block.get("threshold", "").split(), dtype=np.float64)
    decision = _ints(block, "decision_type")
    left, right = _ints(block, "left_child"), _ints(block, "right_child")
    sizes = {len(feature), len(threshold), len(decision), len(left), len(right)}
    if len(leaf_value) != n_leaves or sizes != {n_leaves - 1}:
        raise UnsupportedModel(f"tree {i}: arrays do not match num_leaves={n_leaves}")
    if np.any(decision & _CATEGORICAL):
        raise UnsupportedModel(f"tree {i} has categorical splits")
    missing = (decision >> 2) & 3
    default_left = (decision & _DEFAULT_LEFT) != 0
    zero_le = threshold >= 0.0
    return Tree(
        feature=feature,
        threshold=threshold,
        # NaN: read as 0 with missing type None, else the default direction
        nan_left=np.where(missing == 0, zero_le, default_left),
        # 0: the default direction with missing type Zero, else 0 <= threshold
        zero_left=np.where(missing == _MISSING_ZERO, default_left, zero_le),
        left=left,
        right=right,
        leaf_value=leaf_value,
        inner_count=_counts(block, "internal_count", n_leaves - 1),
        leaf_count=_counts(block, "leaf_count", n_leaves),
    )


def _counts(block: dict[str, str], key: str, size: int) -> np.ndarray:
    """Training rows per node: only a hint for branch layout, so absent or odd means zeros."""
    counts = _ints(block, key)
    return counts if len(counts) == size else np.zeros(size, np.int64)
