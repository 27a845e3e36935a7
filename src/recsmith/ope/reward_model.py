"""The reward model DM and DR lean on, cross-fitted so that no row's own reward predicts it.

Model (deliberately simple, so it is hard to overfit and easy to check by hand):

    q̂(a, p, x) = μ_p + δ_a + (x − x̄) · β

* μ_p: the mean reward at position p, shrunk toward the global mean ḡ with strength λ:
  (Σ r_p + λ ḡ) / (n_p + λ) (one position when the log has none, so μ = ḡ);
* δ_a: the mean residual r − μ_p of action a, shrunk toward 0: Σ (r − μ_p)_a / (n_a + λ),
  so an action seen a few times stays close to the position's mean and an unseen one gets δ = 0;
* β: ridge regression (penalty α on standardised ``x_*`` columns) of what is left, only when the
  log has context columns (numpy least squares; scikit-learn is not a dependency).

With λ = 0 and no context this is the per-action mean reward, which is what the hand-computed
tests use. Cross-fitting (Chernozhukov et al. 2018; used for DR by e.g. Narita et al. 2021): the
rounds are split into K folds (a seeded permutation), and the predictions for a round's rows are
made by the model fitted on the other K − 1 folds. Without it, DR's correction term
w (r − q̂) is biased toward 0 for the very rows that fitted q̂."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsmith.errors import ValidationError


@dataclass(frozen=True, slots=True)
class Rows:
    """Rows to fit on or predict for, as integer codes shared by both sides."""

    round: np.ndarray  # round code, indexes ``fold_of_round``
    action: np.ndarray  # action code
    position: np.ndarray  # position code (all 0 without positions)
    context: np.ndarray  # (n, d) float, d = 0 without x_* columns


def assign_folds(n_rounds: int, n_folds: int, seed: int) -> np.ndarray:
    """Fold of each round: a seeded permutation cut into ``n_folds`` near-equal parts."""
    if n_folds < 2:
        raise ValidationError("--folds", "cross-fitting needs at least 2 folds")
    if n_rounds < n_folds:
        raise ValidationError("--folds", f"{n_folds} folds but only {n_rounds} rounds")
    folds = np.empty(n_rounds, dtype=np.int64)
    folds[np.random.default_rng(seed).permutation(n_rounds)] = np.arange(n_rounds) % n_folds
    return folds


def cross_fitted(
    train: Rows,
    reward: np.ndarray,
    queries: list[Rows],
    fold_of_round: np.ndarray,
    *,
    shrinkage: float = 10.0,
    ridge: float = 1.0,
) -> list[np.ndarray]:
    """Predictions for each of ``queries``, each row by the model fitted without its round's
    fold."""
    n_actions = 1 + max(int(q.action.max(initial=-1)) for q in [train, *queries])
    n_positions = 1 + max(int(q.position.max(initial=-1)) for q in [train, *queries])
    out = [np.empty(len(q.action)) for q in queries]
    train_fold = fold_of_round[train.round]
    for fold in range(int(fold_of_round.max()) + 1):
        keep = train_fold != fold
        if not keep.any():
            continue
        model = _fit(_take(train, keep), reward[keep], n_actions, n_positions, shrinkage, ridge)
        for query, predicted in zip(queries, out, strict=True):
            mine = fold_of_round[query.round] == fold
            predicted[mine] = _predict(model, _take(query, mine))
    return out


@dataclass(frozen=True, slots=True)
class _Model:
    position_mean: np.ndarray
    action_effect: np.ndarray
    x_mean: np.ndarray
    x_scale: np.ndarray
    beta: np.ndarray
    intercept: float


def _fit(
    rows: Rows, reward: np.ndarray, n_actions: int, n_positions: int, shrinkage: float, ridge: float
) -> _Model:
    overall = float(reward.mean())
    count_p = np.bincount(rows.position, minlength=n_positions)
    sum_p = np.bincount(rows.position, weights=reward, minlength=n_positions)
    position_mean = (sum_p + shrinkage * overall) / np.maximum(count_p + shrinkage, 1e-300)
    position_mean[count_p + shrinkage == 0] = overall
    residual = reward - position_mean[rows.position]
    count_a = np.bincount(rows.action, minlength=n_actions)
    sum_a = np.bincount(rows.action, weights=residual, minlength=n_actions)
    action_effect = np.divide(
        sum_a, count_a + shrinkage, out=np.zeros(n_actions), where=count_a + shrinkage > 0
    )
    d = rows.context.shape[1]
    x_mean, x_scale, beta, intercept = np.zeros(d), np.ones(d), np.zeros(d), 0.0
    if d:
        residual = residual - action_effect[rows.action]
        intercept = float(residual.mean())
        x_mean = rows.context.mean(axis=0)
        x_scale = rows.context.std(axis=0)
        x_scale[x_scale == 0] = 1.0
        x = (rows.context - x_mean) / x_scale
        beta = np.linalg.solve(x.T @ x + ridge * np.eye(d), x.T @ (residual - intercept))
    return _Model(position_mean, action_effect, x_mean, x_scale, beta, intercept)


def _predict(model: _Model, rows: Rows) -> np.ndarray:
    predicted = model.position_mean[rows.position] + model.action_effect[rows.action]
    if rows.context.shape[1]:
        predicted = (
            predicted
            + model.intercept
            + ((rows.context - model.x_mean) / model.x_scale) @ model.beta
        )
    return predicted


def _take(rows: Rows, mask: np.ndarray) -> Rows:
    return Rows(rows.round[mask], rows.action[mask], rows.position[mask], rows.context[mask])
