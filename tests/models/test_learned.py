"""A model that fits without error but learns nothing to rank by is told apart from one that
learns: item-kNN and EASE with no two items sharing a user, iALS regularised to zero factors;
``recsmith train`` warns and records it in the manifest, per model, without failing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from recsmith.cli.app import app
from recsmith.models.learned import NOTHING, at_chance, nothing_learned
from recsmith.models.registry import create
from recsmith.testing.views import views

runner = CliRunner()
#: 30 users, one item each among 10 items: no pair of items shares a user
ONE_EACH = [(f"u{u}", f"i{u % 10}") for u in range(30)]
#: the same users, each also with the next item: every item shares users with its neighbours
TWO_EACH = ONE_EACH + [(f"u{u}", f"i{(u + 1) % 10}") for u in range(30)]


@pytest.mark.parametrize(
    ("model", "params", "why"),
    [
        ("itemknn", {}, "item-item matrix is empty"),
        ("ease", {}, "scores the same"),
        ("ials", {"regularization": 1e12, "factors": 4}, "scores the same"),
    ],
)
def test_a_model_with_nothing_to_learn_from_says_so(
    model: str, params: dict[str, float], why: str
) -> None:
    data = views(ONE_EACH)
    fitted = create(model, **params).fit(data)
    reason = nothing_learned(fitted, data)
    assert reason is not None and reason.startswith(NOTHING) and why in reason
    # the oracle: its lists are ties, so the scores of what a user has not seen are all one value
    scores = fitted._score(np.arange(3))
    seen = data.matrix[np.arange(3)].toarray() > 0
    assert all(np.ptp(s[~m]) < 1e-6 for s, m in zip(scores, seen, strict=True))


@pytest.mark.parametrize("model", ["itemknn", "rp3beta", "cooccurrence", "transitions"])
def test_an_item_to_item_matrix_holds_only_pairs_so_empty_means_nothing_learned(
    model: str,
) -> None:
    """The check reads an item-to-item model's matrix as "no pair" when it is empty: it holds
    on because no such model stores an item as its own neighbour (a diagonal entry would be
    counted as a pair learned from data where none exists)."""
    for pairs, learned in [(ONE_EACH, False), (TWO_EACH, True)]:
        data = views(pairs)
        fitted = create(model).fit(data)
        matrix = fitted.item_to_item
        assert matrix is not None
        # the oracle: no stored entry is on the diagonal, and ONE_EACH has no pair of items
        stored = matrix.tocoo()
        assert all(r != c for r, c in zip(stored.row, stored.col, strict=True))
        assert (matrix.nnz > 0) is learned
        reason = nothing_learned(fitted, data)
        assert (reason is None) is learned
        assert learned or "item-item matrix is empty" in str(reason)


@pytest.mark.parametrize("model", ["itemknn", "ease", "ials", "popular"])
def test_a_model_that_learned_something_is_not_warned_of(model: str) -> None:
    data = views([*TWO_EACH, ("u0", "i5"), ("u1", "i5"), ("u2", "i5")])
    assert nothing_learned(create(model).fit(data), data) is None


def test_train_warns_and_records_it_per_model_but_succeeds(tmp_path: Path) -> None:
    rows = [f"{u},{i},2026-01-01T00:00:{n:02d}Z" for n, (u, i) in enumerate(ONE_EACH)]
    data = tmp_path / "one.csv"
    data.write_text("user_id,item_id,timestamp\n" + "\n".join(rows) + "\n")
    out = tmp_path / "model"
    args = ["train", "--data", str(data), "--model", "itemknn", "--out", str(out)]
    result = runner.invoke(app, args, terminal_width=300)
    assert result.exit_code == 0, result.output
    assert f"warning: itemknn: {NOTHING}: its item-item matrix is empty" in result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert list(manifest["fit_warnings"]) == ["itemknn"]
    assert manifest["fit_warnings"]["itemknn"].startswith(NOTHING)
    # data with pairs: no warning, no key
    rows += [f"{u},i{(int(u[1:]) + 1) % 10},2026-01-02T00:00:00Z" for u, _ in ONE_EACH]
    data.write_text("user_id,item_id,timestamp\n" + "\n".join(rows) + "\n")
    again = runner.invoke(app, [*args[:-1], str(tmp_path / "m2")], terminal_width=300)
    assert again.exit_code == 0 and "warning" not in again.stderr
    assert "fit_warnings" not in json.loads((tmp_path / "m2" / "manifest.json").read_text())


def test_a_pipeline_names_the_source_that_learned_nothing(tmp_path: Path) -> None:
    rows = [f"{u},{i},2026-01-01T00:00:{n:02d}Z" for n, (u, i) in enumerate(ONE_EACH)]
    data = tmp_path / "one.csv"
    data.write_text("user_id,item_id,timestamp\n" + "\n".join(rows) + "\n")
    config = tmp_path / "pipeline.toml"
    config.write_text(
        '[[retrieval.sources]]\nname = "pop"\nmodel = "popular"\nquota = 10\n'
        '[[retrieval.sources]]\nname = "knn"\nmodel = "itemknn"\nquota = 10\n'
        "[ranking]\nenabled = false\n"
    )
    out = tmp_path / "pipeline"
    args = ["train", "--data", str(data), "--pipeline", str(config), "--out", str(out)]
    result = runner.invoke(app, args, terminal_width=300)
    assert result.exit_code == 0, result.output
    assert f"warning: knn: {NOTHING}" in result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["fit_warnings"]) <= {"knn", "pop"} and "knn" in manifest["fit_warnings"]


def test_a_pipeline_without_a_model_source_has_no_warning_for_its_stand_in(tmp_path: Path) -> None:
    """With no model source the pipeline's bundle is fitted on ``popular`` as a stand-in, whose
    warning (by model name) is not a source's: the manifest's warnings are by source only."""
    rows = [f"{u},{i},2026-01-01T00:00:{n:02d}Z" for n, (u, i) in enumerate(ONE_EACH)]
    data = tmp_path / "one.csv"
    data.write_text("user_id,item_id,timestamp\n" + "\n".join(rows) + "\n")
    # the oracle: on this data (every item as popular) the stand-in alone learns nothing
    assert nothing_learned(create("popular").fit(views(ONE_EACH)), views(ONE_EACH)) is not None
    config = tmp_path / "pipeline.toml"
    config.write_text(
        '[[retrieval.sources]]\nname = "new"\nkind = "new_arrivals"\nquota = 10\n'
        "[ranking]\nenabled = false\n"
    )
    out = tmp_path / "pipeline"
    args = ["train", "--data", str(data), "--pipeline", str(config), "--out", str(out)]
    result = runner.invoke(app, args, terminal_width=300)
    assert result.exit_code == 0, result.output
    assert NOTHING not in result.stderr
    assert "fit_warnings" not in json.loads((out / "manifest.json").read_text())


#: 300 users in 5 groups of 40 items, 8 items each from their own group's
CLUSTERED = [
    (f"u{u}", f"i{(u % 5) * 40 + i}")
    for u in range(300)
    for i in np.random.default_rng(0).choice(40, 8, replace=False)
]


@pytest.mark.parametrize(
    ("params", "learned"),
    [({}, True), ({"learning_rate": 1e-9}, False), ({"iterations": 1}, False)],
)
def test_bpr_left_at_its_random_start_is_told_from_a_fitted_one(
    params: dict[str, float], learned: bool
) -> None:
    """BPR left where it started scores items apart by noise (no ties): its ranking of the users'
    own items is at chance, which a fitted one's is far above."""
    data = views(CLUSTERED)
    fitted = create("bpr", num_threads=1, **params).fit(data)
    reason = nothing_learned(fitted, data)
    assert (reason is None) is learned
    assert learned or ("no better than chance" in str(reason) and str(reason).startswith(NOTHING))
    # the oracle: the share of each user's top 10 from its own group (1/5 by chance, the other
    # groups' items being as many): a fitted BPR finds the group, one at its start does not
    users = np.arange(data.n_users)
    top = fitted.recommend(users, 10).ids
    group = np.array([int(u[1:]) % 5 for u in data.users.external_ids])
    item_group = np.array([int(i[1:]) // 40 for i in data.items.external_ids])
    own = float(np.mean(item_group[top] == group[:, None]))
    assert own > 0.6 if learned else own < 0.35


#: 10 active users over a pool of 5 shared items, and 70 users with one item each that nobody
#: else has: a model learns the pool, and has nothing for the loners (their unseen items tie)
POOL = [(f"a{u}", f"p{(u + j) % 5}") for u in range(10) for j in range(3)]
LONERS = [(f"l{u}", f"x{u}") for u in range(70)]


@pytest.mark.parametrize("regularization", [250.0, 1e4])
def test_the_check_looks_at_the_most_active_users_and_small_real_differences(
    regularization: float,
) -> None:
    """More than 64 loners: a check of the least active users would see only ties. A strong
    regularisation shrinks EASE's scores to differences of ~1e-4, which still rank (a pool item
    first): far above float noise, so no warning."""
    data = views(POOL + LONERS)
    fitted = create("ease", regularization=regularization).fit(data)
    assert nothing_learned(fitted, data) is None
    # the oracle: an active user's unseen pool items outscore every loner's item by a real
    # margin, though all its scores lie within 1e-2 at the strong regularisation
    user = int(data.users.to_index(["a0"])[0])
    pool = data.items.to_index(["p0", "p1", "p2", "p3", "p4"])
    scores = fitted._score(np.array([user]))[0].astype(np.float64)
    seen = data.matrix[[user]].toarray()[0] > 0
    others = np.setdiff1d(np.arange(data.n_items), pool)
    unseen_pool = np.setdiff1d(pool, np.flatnonzero(seen))
    assert scores[unseen_pool].min() - scores[others].max() > 1e-5
    assert regularization < 1e3 or np.ptp(scores[~seen]) < 1e-2
    # and the loners' own lists are ties: sampled alone, they would read "learned nothing"
    loner = int(data.users.to_index(["l0"])[0])
    loner_scores = fitted._score(np.array([loner]))[0]
    assert np.ptp(np.delete(loner_scores, data.items.to_index(["x0"]))) < 1e-6


@pytest.mark.parametrize(
    ("lowest", "auc", "flagged"),
    [(47, 0.52, True), (48, 0.53, True), (49, 0.54, False), (50, 0.56, False)],
)
def test_the_chance_threshold_is_three_standard_errors_of_the_mean_auc(
    lowest: int, auc: float, flagged: bool
) -> None:
    """64 users, 100 items, 10 seen each, scored by hand: the seen items hold the ranks
    ``lowest`` to ``lowest + 9`` (0 the lowest score) for every user, so each beats
    ``10 * lowest`` of the 900 (seen, unseen) pairs: AUC 470/900 = 0.522 at 47, 0.533 at 48,
    0.544 at 49, 0.556 at 50. Random scores give each user's AUC a variance of
    (10 + 90 + 1) / (12 * 10 * 90) (Mann-Whitney); the mean of 64 has a standard error of
    sqrt(64 * 101 / 10800) / 64 = 0.0121, so 3 of them put the bar at 0.536: between 48 and 49.
    A standard error taken from the mean of the variances (8 times smaller) let 0.52 pass."""
    rng = np.random.default_rng(0)
    scores = np.empty((64, 100))
    seen = []
    for row in range(64):
        order = rng.permutation(100)  # order[r]: the item scored r-th lowest
        scores[row, order] = np.arange(100) + rng.uniform(0, 0.5, 100)  # no ties, same ranks
        seen.append(order[lowest : lowest + 10])
    reason = at_chance(scores, seen)
    assert (reason is not None) is flagged, reason
    assert reason is None or (reason.startswith(NOTHING) and f"(AUC {auc:.2f})" in reason)
