"""Linear item-item models beside EASE on shape_sweep's samples (BENCHMARKS §92, issue #15): does
any closed form reported to beat EASE on sparse data beat it on the marketplace / short shapes?

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=src:benchmarks .venv/bin/python benchmarks/linear_probe.py \\
        --samples market/simulated/0,market/simulated/1,short/ml-100k/0 --out probe.json

Each sample is shape_sweep's (``sample`` and ``split``, its test protocol and ``ndcg_at_10``).
Every family's configuration is chosen on a validation split carved from the train part by the
same protocol (``split(train)``, as the sweep tunes its peers) — never on test — and only the
chosen configuration is fitted on the whole train part and scored on test. The reference is EASE
tuned the same way over the sweep's own EASE peer grid (what the sweep calls "tuned EASE"), and
the ratios are paired bootstrap intervals over users (``ratio_interval``), on validation and test.

Families (dense numpy at float64; the samples hold ≤ 2.4k items, so each fit is a second):

- ``EASE`` (Steck 2019), λ over the sweep's peer grid: the reference.
- ``EASE / pop^β``: the tuned EASE's scores × pop_j^−β (pop = distinct users of item j), β ≠ 0 of
  a small grid — a popularity debias (or boost, β < 0) on top of the tuned λ.
- ``normalised EASE``: EASE's closed form on the Gram of X̃ = D_u^−a X D_i^−1/2 (users weighted
  down by their history length, items by popularity before the inverse), λ a multiple c of the
  normalised Gram's mean diagonal, and scores mapped back to X's scale (x D_i^−1/2 B̃ D_i^1/2), so
  the normalisation changes the fit, not the item order by itself.
- ``GF-CF`` (Shen et al., CIKM 2021): R̃ = D_u^−1/2 X D_i^−1/2, scores x (R̃ᵀR̃ + α D_i^−1/2 V_k
  V_kᵀ D_i^1/2) with V_k R̃'s top-k right singular vectors; α = 0 is its linear filter alone.
- ``EASE + low-pass``: the tuned EASE's scores and GF-CF's ideal low-pass scores, each divided by
  its user's standard deviation over the catalogue, summed at weight w (a different signal than
  EASE's: a rank-k smoothing of the normalised co-occurrence).

A user's own train items never enter the top 10 (the scorer would drop them without refilling).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from calibration import calibration_line
from shape_sweep import (
    PEERS,
    SHAPES,
    K,
    Split,
    _matrix,
    _named,
    events_of,
    ndcg_at_10,
    ratio_interval,
    sample,
    split,
)

from recsmith.features.interactions import Interactions, binarize

#: The sweep's tuned-EASE grid, in its order (ties keep the earlier entry, as ``tuned`` does).
EASE_LAMBDAS = [float(p.get("regularization", 250.0)) for p in PEERS["EASE"][2]]
POP_BETAS = [0.1, 0.25, 0.5, -0.1, -0.25]
NEASE_GRID = [{"a": a, "c": c} for a in (0.0, 0.5) for c in (5.0, 50.0, 500.0)]
GFCF_GRID = [
    {"k": 32, "alpha": 0.3}, {"k": 32, "alpha": 1.0}, {"k": 128, "alpha": 0.3},
    {"k": 128, "alpha": 1.0}, {"k": 256, "alpha": 0.3}, {"k": 0, "alpha": 0.0},
]  # fmt: skip
BLEND_GRID = [{"k": k, "w": w} for k in (32, 128) for w in (0.1, 0.3, 1.0)]


def ease_weights(gram: np.ndarray, lam: float) -> np.ndarray:
    """EASE's B = −P / diag(P) off the diagonal, P = (G + λI)⁻¹."""
    p = np.linalg.inv(gram + lam * np.eye(len(gram)))
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    return b


@dataclass
class Fit:
    """One train matrix's shared pieces (Gram, popularity, GF-CF's normalised matrix and its
    SVD, EASE per λ), computed once and reused by every configuration scored on it."""

    x: np.ndarray  # binary users × items, dense float64
    _ease: dict[float, np.ndarray] = field(default_factory=dict)
    _svd: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.gram = self.x.T @ self.x
        self.pop = np.maximum(np.diag(self.gram), 1.0)  # distinct users an item has
        d_u = np.maximum(self.x.sum(axis=1), 1.0)
        self.r_norm = self.x / np.sqrt(d_u)[:, None] / np.sqrt(self.pop)[None, :]

    def ease(self, lam: float) -> np.ndarray:
        if lam not in self._ease:
            self._ease[lam] = ease_weights(self.gram, lam)
        return self._ease[lam]

    def right_vectors(self, k: int) -> np.ndarray:
        """R̃'s top-k right singular vectors, k × items."""
        if self._svd is None:
            self._svd = np.linalg.svd(self.r_norm, full_matrices=False)[2]
        return self._svd[:k]

    def low_pass(self, k: int) -> np.ndarray:
        """GF-CF's ideal low-pass filter D_i^−1/2 V_k V_kᵀ D_i^1/2 (items × items)."""
        v = self.right_vectors(k)
        return (v.T / np.sqrt(self.pop)[:, None]) @ (v * np.sqrt(self.pop)[None, :])

    def gfcf(self, k: int, alpha: float) -> np.ndarray:
        linear = self.r_norm.T @ self.r_norm
        return linear + alpha * self.low_pass(k) if alpha else linear

    def nease(self, a: float, c: float) -> np.ndarray:
        """Normalised EASE mapped back to X's scale: D_i^−1/2 B̃ D_i^1/2."""
        d_u = np.maximum(self.x.sum(axis=1), 1.0)
        xt = self.x / d_u[:, None] ** a / np.sqrt(self.pop)[None, :]
        gram = xt.T @ xt
        b = ease_weights(gram, c * float(np.mean(np.diag(gram))))
        return b / np.sqrt(self.pop)[:, None] * np.sqrt(self.pop)[None, :]


def per_user_std(scores: np.ndarray) -> np.ndarray:
    return scores / np.maximum(scores.std(axis=1, keepdims=True), 1e-12)


#: family → (grid, scores(fit, histories, config, tuned λ)); each returns users × items.
Scorer = Callable[[Fit, np.ndarray, dict, float], np.ndarray]
FAMILIES: dict[str, tuple[list[dict], Scorer]] = {
    "EASE / pop^β": (
        [{"beta": b} for b in POP_BETAS],
        lambda f, h, c, lam: (h @ f.ease(lam)) * f.pop[None, :] ** -c["beta"],
    ),
    "normalised EASE": (NEASE_GRID, lambda f, h, c, lam: h @ f.nease(c["a"], c["c"])),
    "GF-CF": (GFCF_GRID, lambda f, h, c, lam: h @ f.gfcf(c["k"], c["alpha"])),
    "GF-CF linear": ([{"k": 0, "alpha": 0.0}], lambda f, h, c, lam: h @ f.gfcf(0, 0.0)),
    "EASE + low-pass": (
        BLEND_GRID,
        lambda f, h, c, lam: (
            per_user_std(h @ f.ease(lam)) + c["w"] * per_user_std(h @ f.low_pass(c["k"]))
        ),
    ),
}


@dataclass
class Scored:
    """One split's matrix, its evaluated users' histories, and the scorer for a score matrix."""

    s: Split
    data: Interactions
    users: list[str]
    fit: Fit
    history: np.ndarray

    @classmethod
    def of(cls, s: Split) -> Scored:
        data = _matrix(s)
        x = binarize(data.matrix).toarray().astype(np.float64)
        users = [u for u in s.users if data.users.to_index([u])[0] >= 0]
        return cls(s, data, users, Fit(x), x[data.users.to_index(users)])

    def ndcg(self, scores: np.ndarray) -> np.ndarray:
        """Per ``s.users`` NDCG@10 of each user's top 10 unseen items by ``scores``."""
        scores = np.where(self.history > 0, -np.inf, scores)
        top = np.argsort(-scores, axis=1, kind="stable")[:, :K]
        return ndcg_at_10(_named(self.data, self.users, top), self.s)


def choose(val: Scored, grid: list[dict], score: Scorer, lam: float) -> tuple[dict, np.ndarray]:
    """The grid's configuration with the best validation mean (the earlier one on ties)."""
    best, best_scores = grid[0], None
    for config in grid:
        got = val.ndcg(score(val.fit, val.history, config, lam))
        if best_scores is None or got.mean() > best_scores.mean():
            best, best_scores = config, got
    assert best_scores is not None
    return best, best_scores


def ratio_text(a: np.ndarray, b: np.ndarray) -> tuple[str, list[float]]:
    r = list(ratio_interval(a, b))
    return f"{r[0]:.3f} [{r[1]:.3f}, {r[2]:.3f}]", r


def run(name: str) -> dict:
    shape_name, dataset, seed = name.split("/")
    shape = SHAPES[shape_name]
    s = split(sample(events_of(dataset, int(seed)), shape, int(seed)), shape.protocol)
    val, test = Scored.of(split(s.train, shape.protocol)), Scored.of(s)
    ease_scorer: Scorer = lambda f, h, c, lam: h @ f.ease(c["lam"])  # noqa: E731
    lam_config, ease_val = choose(val, [{"lam": v} for v in EASE_LAMBDAS], ease_scorer, 0.0)
    lam = lam_config["lam"]
    ease_test = test.ndcg(test.history @ test.fit.ease(lam))
    print(
        f"\n#### {name}: {test.fit.x.shape[1]} items, {len(s.users)} test users, "
        f"{len(val.s.users)} validation users; tuned EASE λ {lam:g}: "
        f"validation {ease_val.mean():.4f}, test {ease_test.mean():.4f}"
    )
    print("| family | chosen on validation | validation | / tuned EASE | test | / tuned EASE |")
    print("|---|---|---:|---:|---:|---:|")
    out: dict = {
        "sample": name,
        "ease": {"lam": lam, "val": ease_val.tolist(), "test": ease_test.tolist()},
    }
    for family, (grid, score) in FAMILIES.items():
        config, got_val = choose(val, grid, score, lam)
        got_test = test.ndcg(score(test.fit, test.history, config, lam))
        rv, vr = ratio_text(got_val, ease_val)
        rt, tr = ratio_text(got_test, ease_test)
        print(
            f"| {family} | {json.dumps(config)} | {got_val.mean():.4f} | {rv} | "
            f"{got_test.mean():.4f} | {rt} |",
            flush=True,
        )
        out[family] = {
            "config": config, "val": got_val.tolist(), "test": got_test.tolist(),
            "val_ratio": vr, "test_ratio": tr,
        }  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", required=True, help="shape/dataset/seed, comma-separated")
    parser.add_argument("--out", type=Path, default=None, help="per-user scores as JSON")
    args = parser.parse_args()
    print(calibration_line(), flush=True)
    rows = [run(name) for name in args.samples.split(",")]
    print("\n### Pooled over the samples (users concatenated; paired, 1,000 resamples)")
    print("| family | validation / tuned EASE | test / tuned EASE |")
    print("|---|---:|---:|")
    for family in FAMILIES:
        parts = {
            part: (
                np.concatenate([np.asarray(r[family][part]) for r in rows]),
                np.concatenate([np.asarray(r["ease"][part]) for r in rows]),
            )
            for part in ("val", "test")
        }
        cells = [ratio_text(*parts[p])[0] for p in ("val", "test")]
        print(f"| {family} | {cells[0]} | {cells[1]} |")
    if args.out:
        args.out.write_text(json.dumps(rows))


if __name__ == "__main__":
    main()
