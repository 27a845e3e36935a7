"""The evaluation protocol's own pieces against hand-built oracles: what counts as a user's truth
(``ground_truth``), which model is best and how its p-values are corrected (``compare_to_best``),
and evaluate's NDCG against a plain-Python scorer on a real dataset split."""

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from recsmith.bundle import ModelBundle
from recsmith.config import EventSettings
from recsmith.evaluation.metrics import compute_metrics
from recsmith.evaluation.runner import (
    GroundTruth,
    ModelResult,
    compare_to_best,
    evaluate_model,
    evaluate_models,
    ground_truth,
)
from recsmith.evaluation.split import temporal_split
from recsmith.events.validate import validate_events
from recsmith.features.interactions import Interactions
from recsmith.models.registry import create
from recsmith.pipeline.artifact import train_pipeline
from recsmith.pipeline.config import PipelineConfig
from recsmith.pipeline.validation import _time_cut
from recsmith.simulate import simulate
from recsmith.testing.recommender import checkerboard_events


def events(rows: list[tuple[str, str]], start: int = 0) -> pd.DataFrame:
    """Canonical view events, one second apart, for (user, item) pairs."""
    frame = pd.DataFrame(rows, columns=["user_id", "item_id"])
    n = len(frame)
    return frame.assign(
        event_id=[f"e{start + j}" for j in range(n)],
        session_id=None,
        event_type="view",
        value=np.nan,
        context=None,
        ts=(1_700_000_000 + start + np.arange(n)) * 1_000_000,
    )


TRAIN = [("u1", "a"), ("u1", "b"), ("u2", "b"), ("u2", "c"), ("u4", "a")]
TEST = [
    ("u1", "a"),  # u1 had it in training: not truth
    ("u1", "c"),
    ("u1", "d"),  # d is cold (not in training): truth, and a miss for every model
    ("u2", "c"),  # u2 had it: not truth
    ("u2", "a"),
    ("u2", "a"),  # twice is still one relevant item
    ("u3", "a"),  # u3 unseen in training: not evaluated
    ("u4", "a"),  # u4's only test item is a training item: nothing left, not evaluated
]
# By hand: u1 → {c, d}, u2 → {a}.
EXPECTED = {"u1": {"c", "d"}, "u2": {"a"}}


@pytest.fixture(scope="module")
def split() -> tuple[Interactions, GroundTruth]:
    data = Interactions.from_events(events(TRAIN), EventSettings().weights)
    return data, ground_truth(data, events(TEST, start=100), EventSettings().weights)


def truth_by_name(data: Interactions, truth: GroundTruth, cold: list[str]) -> dict[str, set[str]]:
    names = [*data.items.external_ids, *cold]
    return {
        str(u): {names[c] for c in truth.matrix[[row]].indices}
        for row, u in enumerate(truth.user_ids)
    }


def test_truth_drops_training_items_and_unseen_users_and_keeps_cold_items(
    split: tuple[Interactions, GroundTruth],
) -> None:
    data, truth = split
    assert list(truth.user_ids) == ["u1", "u2"]
    assert truth.matrix.shape == (2, data.n_items + 1)  # one cold column, for d
    assert truth_by_name(data, truth, ["d"]) == EXPECTED
    assert truth.matrix.nnz == 3  # a, twice, is one entry


def test_a_cold_item_counts_as_a_miss(split: tuple[Interactions, GroundTruth]) -> None:
    data, truth = split
    result = evaluate_model("popular", data, truth, k=3, metrics=("recall",))
    # popular lists for u1 exclude a, b → c first (1 of 2: d cannot be listed); u2 → a first
    assert result.per_user["recall"].tolist() == [0.5, 1.0]


def result(name: str, ndcg: list[float], recall: list[float]) -> ModelResult:
    per_user = {"ndcg": np.array(ndcg), "recall": np.array(recall)}
    return ModelResult(
        model=name,
        params={},
        metrics={m: float(v.mean()) for m, v in per_user.items()},
        per_user=per_user,
        coverage=0.0,
        fit_seconds=0.0,
        recommend_seconds=0.0,
    )


RESULTS = [
    result("a", [0.9, 0.8, 0.7, 0.9, 0.6, 0.8], [0.1, 0.2, 0.1, 0.0, 0.3, 0.1]),
    result("b", [0.5, 0.6, 0.7, 0.2, 0.4, 0.5], [0.9, 0.8, 0.7, 0.9, 0.6, 0.7]),
    result("c", [0.8, 0.9, 0.6, 0.7, 0.5, 0.8], [0.5, 0.1, 0.4, 0.6, 0.2, 0.5]),
]


def holm(p: list[float]) -> list[float]:
    """Holm's step-down adjustment written out: the j-th smallest p times (m - j), running max."""
    m = len(p)
    out = [0.0] * m
    running = 0.0
    for rank, i in enumerate(sorted(range(m), key=lambda i: p[i])):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


@pytest.mark.parametrize(("metric", "best"), [("ndcg", "a"), ("recall", "b")])
def test_the_best_model_is_chosen_by_the_named_metric_with_holms_correction(
    metric: str, best: str
) -> None:
    comparisons = compare_to_best(RESULTS, metric)
    others = [r for r in RESULTS if r.model != best]
    assert [c.model for c in comparisons] == [r.model for r in others]
    assert {c.best for c in comparisons} == {best} and {c.metric for c in comparisons} == {metric}
    winner = next(r for r in RESULTS if r.model == best).per_user[metric]
    p = [float(stats.ttest_rel(winner, r.per_user[metric]).pvalue) for r in others]
    assert [c.p_value for c in comparisons] == pytest.approx(p, rel=1e-12)
    assert [c.p_holm for c in comparisons] == pytest.approx(holm(p), rel=1e-12)
    assert [c.mean_diff for c in comparisons] == pytest.approx(
        [float((winner - r.per_user[metric]).mean()) for r in others], rel=1e-12
    )


def test_holm_here_is_not_plain_bonferroni() -> None:
    """The oracle above must be able to tell Holm from Bonferroni on these p-values."""
    comparisons = compare_to_best(RESULTS, "ndcg")
    bonferroni = [min(1.0, 2 * c.p_value) for c in comparisons]
    assert [c.p_holm for c in comparisons] != pytest.approx(bonferroni)


def plain_ndcg(lists: list[list[str]], relevant: list[set[str]], k: int) -> list[float]:
    """NDCG@k with binary relevance, from ids, in plain Python: DCG over the list's hits, divided
    by the DCG of min(k, |relevant|) hits at the top."""
    scores = []
    for listed, rel in zip(lists, relevant, strict=True):
        dcg = sum(1 / math.log2(r + 2) for r, item in enumerate(listed[:k]) if item in rel)
        ideal = sum(1 / math.log2(r + 2) for r in range(min(k, len(rel))))
        scores.append(dcg / ideal)
    return scores


def movielens_events(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(
        path, sep="\t", names=["user_id", "item_id", "rating", "ts"], dtype={0: str, 1: str}
    )
    return events(list(zip(frame.user_id, frame.item_id, strict=True))).assign(
        ts=frame["ts"].to_numpy() * 1_000_000
    )


def test_evaluate_ndcg_matches_a_plain_python_scorer_on_movielens(
    dataset: Callable[[str], Path],
) -> None:
    root = dataset("movielens-100k")
    train, test = movielens_events(root / "u1.base.gz"), movielens_events(root / "u1.test.gz")
    data = Interactions.from_events(train, EventSettings().weights)
    truth = ground_truth(data, test, EventSettings().weights)
    k = 10
    result = evaluate_model("itemknn", data, truth, k=k, metrics=("ndcg",))

    # the oracle's truth comes from the raw frames: test items minus the user's training items
    had = train.groupby("user_id")["item_id"].agg(set)
    wanted = test.groupby("user_id")["item_id"].agg(set)
    relevant = {u: items - had[u] for u, items in wanted.items() if u in had and items - had[u]}
    assert sorted(truth.user_ids) == sorted(relevant)
    bundle = ModelBundle.train(data, create("itemknn"))
    top, _ = bundle.top_k(truth.user_ids, k)
    lists = [list(data.items.to_external(row[row >= 0])) for row in top.ids]
    expected = plain_ndcg(lists, [relevant[u] for u in truth.user_ids], k)
    np.testing.assert_allclose(result.per_user["ndcg"], expected, rtol=0, atol=1e-9)
    assert result.metrics["ndcg"] == pytest.approx(sum(expected) / len(expected), abs=1e-9)


def test_evaluating_a_pipeline_sorts_the_training_events_once(
    matrices_built: list[int],
) -> None:
    """``evaluate --pipeline``: the pipeline trains on the matrix the protocol scores on (one
    ``from_events``, were two), with the figures of a pipeline that builds its own."""
    frame, _ = validate_events(simulate(n_users=120, n_items=80, seed=3).events, EventSettings())
    parts = temporal_split(frame, 0.8)
    config = PipelineConfig.model_validate(
        {
            "retrieval": {"sources": [{"name": "knn", "model": "itemknn", "quota": 50}]},
            "ranking": {"enabled": False},
        }
    )
    weights = dict(EventSettings().weights)
    (result,), _ = evaluate_models(frame, parts, [], 10, weights, pipeline=config)
    assert matrices_built == [len(parts.train)]
    own = train_pipeline(config, parts.train, weights)  # builds its own matrix
    data = Interactions.from_events(parts.train, weights)
    truth = ground_truth(data, parts.test, weights)
    top, _, _ = own.top_k(truth.user_ids, 10)
    scored = compute_metrics(top.ids.astype(np.int64), truth.matrix, truth.matrix.shape[1], k=10)
    assert result.metrics["ndcg"] == pytest.approx(scored.means["ndcg"], abs=1e-12)
    assert result.metrics["recall"] == pytest.approx(scored.means["recall"], abs=1e-12)


@pytest.mark.parametrize("model", ["ease", "itemknn"])
def test_evaluate_scores_the_list_serving_serves(model: str) -> None:
    """Each user's held-out item lies in the checkerboard's other group, which nothing in their
    training reaches: the model weighs it 0 (no evidence), and what serving shows there is the
    popularity fill (``ModelBundle.answer``, the HTTP entry point). Evaluation must score that
    list, not the model's raw top-k with its zero-weight ties in index order. The oracle: the
    served lists, scored in plain Python."""
    board = checkerboard_events()
    data = Interactions.from_events(board, EventSettings().weights)
    users = sorted(set(board["user_id"]))
    held = [(u, "i001" if int(u[1:]) % 2 == 0 else "i000") for u in users]
    truth = ground_truth(data, events(held, start=10_000_000), EventSettings().weights)
    k = 12  # past the 6 items each user's group has left: the rest is the fill
    result = evaluate_model(model, data, truth, k=k, metrics=("ndcg",))
    served = ModelBundle.train(data, create(model)).answer(truth.user_ids, k)
    lists = [list(row) for row in served.lists.item_ids]
    expected = plain_ndcg(lists, [{item} for _, item in held], k)
    np.testing.assert_allclose(result.per_user["ndcg"], expected, rtol=0, atol=1e-9)
    hits = [
        sources[row.index(item)]
        for row, sources, (_, item) in zip(lists, served.sources, held, strict=True)
        if item in row
    ]
    assert hits and all(s == ["popular"] for s in hits)  # only the fill can reach them


@pytest.mark.parametrize(("half_life_days", "relevant"), [(None, True), (10.0, False)])
def test_truth_nets_the_test_events_decayed_as_the_time_cut_fold_does(
    half_life_days: float | None, relevant: bool
) -> None:
    """X rated +2, then -1.5 one half-life (10 days) later, both in the test window: by hand its
    net is 0.5 undecayed (a hit to find) but 2 x 0.5 - 1.5 < 0 decayed (none), and calibration's
    time-cut fold (``validation._time_cut``, from the decayed matrix) says the same on that cut."""
    day_us = 86_400 * 1_000_000
    rows = [("A", "view", None, 0), ("B", "view", None, 1), ("X", "rating", 2.0, 10)]
    rows.append(("X", "rating", -1.5, 20))
    frame = pd.DataFrame(
        {
            "event_id": [f"e{n}" for n in range(len(rows))],
            "user_id": "u",
            "session_id": None,
            "item_id": [item for item, *_ in rows],
            "event_type": [kind for _, kind, *_ in rows],
            "value": [value for *_, value, _ in rows],
            "ts": [day * day_us for *_, day in rows],
        }
    )
    weights = EventSettings().weights
    parts = temporal_split(frame, 0.5)
    data = Interactions.from_events(parts.train, weights, half_life_days=half_life_days)
    truth = ground_truth(data, parts.test, weights)
    assert (truth.user_ids.tolist() == ["u"]) is relevant
    full = Interactions.from_events(frame, weights, half_life_days=half_life_days)
    assert (len(_time_cut(full, 0.5).users) == 1) is relevant
