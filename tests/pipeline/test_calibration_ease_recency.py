"""``calibration.ease_recency`` (``[1.0, 3.0]`` by default: BENCHMARKS §182, §187): calibration
tries EASE's recency weights right after λ, at the λ kept, as a switched strength that reuses the
λ's solve and turns on by ``prefer`` alone (``test_calibration_strengths`` checks the switched
rule itself)."""

from __future__ import annotations

from pathlib import Path

from test_calibration import WEIGHTS, ease_alone_calibrated, popularity_case

from recsmith.features.interactions import Interactions
from recsmith.models.ease import EASE
from recsmith.pipeline.artifact import load_artifact, save_pipeline, train_pipeline
from recsmith.pipeline.calibration import (
    AFTER_SOLVE,
    GRID,
    SWITCHED_STRENGTHS,
    grid_of,
)
from recsmith.pipeline.config import CalibrationConfig, PipelineConfig, default_pipeline_config


def test_on_by_default_and_tried_after_lambda_as_a_switched_strength_after_the_solve() -> None:
    cc = default_pipeline_config().calibration
    assert cc.ease_recency == [1.0, 3.0]  # confirmed on unread samples (BENCHMARKS §187)
    assert CalibrationConfig().ease_recency == [1.0, 3.0]
    assert grid_of("ease", cc)[1] == ("recency", (1.0, 3.0))
    assert grid_of("ease", cc.model_copy(update={"ease_recency": []}))[1] == GRID["ease"][1]
    on = cc.model_copy(update={"ease_recency": [3.0, 1.0, 3.0], "ease_decay": [0.5]})
    assert (
        grid_of("ease", on)
        == (
            GRID["ease"][0],
            ("recency", (3.0, 1.0)),  # right after λ (no solve); each value tried once
            *GRID["ease"][1:],
            ("lowpass", (0.3, 1.0)),
            ("autoencoder", (1.0,)),
            ("decay", (0.5,)),
        )
    )
    assert grid_of("ials", on) == GRID["ials"]
    assert "recency" in SWITCHED_STRENGTHS and "recency" in AFTER_SOLVE


def test_listed_values_are_scored_from_the_values_kept_before_and_the_kept_one_ships() -> None:
    chosen = ease_alone_calibrated(ease_recency=[1.0, 3.0])
    grid = chosen.report["grid"]
    assert list(grid) == ["ease.regularization", "ease.recency", "ease.rising"]
    lam, entry, rising = grid["ease.regularization"], grid["ease.recency"], grid["ease.rising"]
    assert list(entry["ndcg@10"]) == ["as configured", "1.0", "3.0"]

    def kept_scores(row: dict) -> list[float]:
        kept = row["kept"]
        return row["ndcg@10"][str(kept) if kept != "as configured" else kept]

    # each step starts from what the step before kept
    assert entry["ndcg@10"]["as configured"] == kept_scores(lam)
    assert rising["ndcg@10"]["as configured"] == kept_scores(entry)
    shipped = next(s for s in chosen.config.retrieval.sources if s.name == "ease")
    assert shipped.params.get("recency", "as configured") == entry["kept"]


def test_a_saved_pipeline_serves_known_users_the_weighted_order_evaluation_scored(
    tmp_path: Path,
) -> None:
    """Offline == online: a pipeline whose EASE source weighs by recency, saved and loaded,
    answers each known user with the list a plain ``EASE(recency=…)`` fitted on the same events
    gives (the weights travel in the release), not plain EASE's."""
    events = popularity_case()
    source = {"name": "ease", "model": "ease", "quota": 50, "params": {"recency": 3.0}}
    off = {"enabled": False}
    cfg = PipelineConfig.model_validate(
        {"retrieval": {"sources": [source]}, "ranking": off, "calibration": off}
    )
    save_pipeline(train_pipeline(cfg, events, WEIGHTS), tmp_path / "p")
    loaded = load_artifact(tmp_path / "p")
    users = [f"u{u:04d}" for u in range(0, 400, 3)]
    served = loaded.recommend(users, 10)
    data = Interactions.from_events(events, WEIGHTS)
    rows = data.users.to_index(users)
    lists = {}
    for beta in (3.0, 0.0):
        model = EASE(recency=beta).fit(data)
        top = model.recommend(rows, 10, exclude=data.matrix[rows])
        lists[beta] = [list(data.items.to_external(r[r >= 0])) for r in top.ids]
    assert [list(x) for x in served.item_ids] == lists[3.0]
    assert lists[3.0] != lists[0.0]  # the weights moved the lists: the check could fail
