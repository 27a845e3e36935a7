"""EASE alone against Steck 2020's two full-rank denoising forms (BENCHMARKS §62), on shape_sweep's
samples, scored on their test part:

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=src:benchmarks .venv/bin/python \\
        benchmarks/ease_denoising.py --shape long --dataset ml-100k --seeds 0,1,2 \\
        --values 250:0.25,250:0.5

With P = (G + Λ)⁻¹ and Λ = λI + p/(1−p)·diagMat(diag(G)): EDLAE is EASE's form,
B = −P·diagMat(1/diag(P)) off the diagonal; DLAE is B = −P·Λ off the diagonal, which is what
``EASE(dropout=p)`` ships (the script checks the library's weights against it). Each form's test
NDCG@10 is printed with its paired ratio to EASE at the library's defaults.
"""

from __future__ import annotations

import argparse

import numpy as np
from calibration import calibration_line
from shape_sweep import (
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
from recsmith.models.ease import EASE


def forms(gram: np.ndarray, lam: float, p: float) -> dict[str, np.ndarray]:
    """EDLAE's and DLAE's weights (diagonal zeroed: it only scores items a user has)."""
    penalty = lam + p / (1 - p) * np.diag(gram)
    inverse = np.linalg.inv(gram + np.diag(penalty))
    out = {"edlae": -inverse / np.diag(inverse)[None, :], "dlae": -inverse * penalty[None, :]}
    for b in out.values():
        np.fill_diagonal(b, 0.0)
    return out


def ndcg_of(b: np.ndarray, s: Split, data: Interactions, users: list[str]) -> np.ndarray:
    """Per test user NDCG@10 of the top 10 of x·B, the user's own items excluded."""
    history = binarize(data.matrix)[data.users.to_index(users)]
    scores = np.asarray(history @ b)
    scores[history.toarray() > 0] = -np.inf
    return ndcg_at_10(_named(data, users, np.argsort(-scores, axis=1)[:, :K]), s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="long")
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--values", default="250:0.5", help="λ:p pairs, comma-separated")
    args = parser.parse_args()
    values = [tuple(map(float, v.split(":"))) for v in args.values.split(",")]
    print(calibration_line(), flush=True)
    for seed in map(int, args.seeds.split(",")):
        s = split(
            sample(events_of(args.dataset, seed), SHAPES[args.shape], seed),
            SHAPES[args.shape].protocol,
        )
        data = _matrix(s)
        x = binarize(data.matrix).astype(np.float64)
        gram = (x.T @ x).toarray()
        users = np.asarray(s.users, dtype=object)
        known = list(users[data.users.to_index(users) >= 0])
        base = ndcg_of(EASE(dtype="float64").fit(data).weights_, s, data, known)
        print(
            f"{args.shape}/{args.dataset}/{seed}: {gram.shape[0]} items, {len(known)} test "
            f"users known at training, EASE {base.mean():.4f}"
        )
        for lam, p in values:
            pair = forms(gram, lam, p)
            library = EASE(regularization=lam, dropout=p, dtype="float64").fit(data).weights_
            np.testing.assert_allclose(library, pair["dlae"], atol=1e-6)
            for name, b in pair.items():
                v = ndcg_of(b, s, data, known)
                r, lo, hi = ratio_interval(v, base)
                print(
                    f"  {name:5s} λ={lam:g} p={p:g}: {v.mean():.4f}  {r:.3f} [{lo:.3f}, {hi:.3f}]",
                    flush=True,
                )


if __name__ == "__main__":
    main()
