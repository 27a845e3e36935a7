"""The HTML evaluation report: self-contained, faithful to the runner's numbers, escaped, and
reachable from ``recsmith evaluate --report``."""

from __future__ import annotations

import base64
import html
import json
import re
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from recsmith.cli._data import load_events
from recsmith.cli.app import app
from recsmith.config import EventSettings, Settings
from recsmith.errors import MissingExtraError
from recsmith.evaluation.report import (
    curves_figure,
    events_fingerprint,
    interaction_head_share,
    popularity_figure,
    redact,
    require_matplotlib,
    write_report,
)
from recsmith.evaluation.runner import ModelResult, compare_to_best, evaluate_models
from recsmith.evaluation.significance import bootstrap_ci
from recsmith.evaluation.split import parse_split
from recsmith.events.validate import validate_events
from recsmith.simulate import simulate

pytest.importorskip("matplotlib")  # the ``report`` extra (in ``dev``)
MODELS = ["popular", "itemknn", "ease"]
COMMAND = "recsmith evaluate --data events.csv --models popular,itemknn,ease --report r.html"


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    sim = simulate(n_users=200, n_items=100)
    valid, rejected = validate_events(sim.events, EventSettings())
    assert not rejected
    return valid


@pytest.fixture(scope="module")
def evaluated(events: pd.DataFrame) -> tuple[list[ModelResult], dict]:
    return evaluate_models(
        events, parse_split("temporal:0.8"), MODELS, 10, EventSettings().weights, curve_k=20
    )


def write(path: Path, evaluated: tuple[list[ModelResult], dict], **overrides: str) -> str:
    results, stats = evaluated
    options = {
        "split": "temporal:0.8",
        "command": COMMAND,
        "data_fingerprint": "0123abcd4567ef89",
        "data_source": "events.csv",
    } | overrides
    write_report(
        path, results=results, comparisons=compare_to_best(results), stats=stats, k=10, **options
    )
    return path.read_text(encoding="utf-8")


def cell(page: str, model: str, metric: str) -> str:
    """The HTML of the ``metric`` cell in the first table row of ``model`` (the accuracy table)."""
    row = re.search(rf'<tr data-model="{model}">(.*?)</tr>', page)
    assert row, f"no row for {model}"
    found = re.search(rf'data-metric="{metric}">(.*?)</td>', row.group(1))
    assert found, f"no {metric} cell for {model}"
    return found.group(1)


def test_report_is_self_contained_and_names_its_inputs(
    evaluated: tuple[list[ModelResult], dict], tmp_path: Path
) -> None:
    page = write(tmp_path / "sub" / "report.html", evaluated)
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.IGNORECASE)
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page.lower()
    assert page.count("data:image/png;base64,") >= 4
    for model in MODELS:
        assert f'<tr data-model="{model}">' in page
    assert COMMAND in page
    assert "0123abcd4567ef89" in page


def test_report_shows_the_runners_numbers_and_bootstrap_intervals(
    evaluated: tuple[list[ModelResult], dict], tmp_path: Path
) -> None:
    page = write(tmp_path / "report.html", evaluated)
    for r in evaluated[0]:
        ndcg = cell(page, r.model, "ndcg")
        assert ndcg.startswith(f"{r.metrics['ndcg']:.4f}<span")
        low, high = bootstrap_ci(r.per_user["ndcg"])
        assert f"[{low:.4f}, {high:.4f}]" in ndcg
        assert low <= r.metrics["ndcg"] <= high
        assert cell(page, r.model, "recall").startswith(f"{r.metrics['recall']:.4f}<span")
        assert cell(page, r.model, "precision") == f"{r.metrics['precision']:.4f}"
        assert cell(page, r.model, "coverage") == f"{r.coverage:.4f}"


def test_report_escapes_text_and_hides_store_passwords(
    evaluated: tuple[list[ModelResult], dict], tmp_path: Path
) -> None:
    page = write(
        tmp_path / "report.html",
        evaluated,
        command="recsmith evaluate --models '<script>alert(1)</script>'",
        data_source="postgresql://bob:s3cret@db:5432/shop",
    )
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "s3cret" not in page
    assert "postgresql://bob:***@db:5432/shop" in page
    assert redact("events.csv") == "events.csv"


def test_missing_matplotlib_names_the_extra(
    evaluated: tuple[list[ModelResult], dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(MissingExtraError, match=r"recsmith\[report\]"):
        write(tmp_path / "report.html", evaluated)
    assert not (tmp_path / "report.html").exists()


def test_fingerprint_ignores_row_order_but_not_content(events: pd.DataFrame) -> None:
    shuffled = events.sample(frac=1.0, random_state=1).reset_index(drop=True)
    assert events_fingerprint(shuffled) == events_fingerprint(events)
    assert events_fingerprint(events.iloc[1:]) != events_fingerprint(events)
    assert re.fullmatch(r"[0-9a-f]{16}", events_fingerprint(events))


def test_interaction_head_share_is_a_share(events: pd.DataFrame) -> None:
    share = interaction_head_share(events)
    assert 0.2 <= share <= 1.0  # head items hold at least their share of interactions
    # Untouched catalogue items widen the head (it is 20% of ALL items), so the share grows.
    assert share <= interaction_head_share(events, n_items=120) <= 1.0
    assert interaction_head_share(events, n_items=10_000) == 1.0


@pytest.mark.parametrize(
    ("n_items", "expected"), [(None, 9 / 20), (15, 12 / 20), (20, 14 / 20), (10_000, 1.0)]
)
def test_interaction_head_share_by_hand(n_items: int | None, expected: float) -> None:
    """Distinct users per item: a 5 (u1 also repeats it 9 times), b 4, c 3, d 2, e..j 1: 20 pairs.
    The head is the top ceil(20% of n_items) by users, ties joining: of 10 items a, b (9 pairs);
    of 15, a..c (12); of 20, a..d (14); of 10,000, every touched item."""
    users = {"a": 5, "b": 4, "c": 3, "d": 2, **dict.fromkeys("efghij", 1)}
    rows = [(f"u{n}", item) for item, count in users.items() for n in range(1, count + 1)]
    rows += [("u1", "a")] * 9
    frame = pd.DataFrame(rows, columns=["user_id", "item_id"]).assign(session_id=None)
    assert interaction_head_share(frame, n_items=n_items) == pytest.approx(expected)


# ---- through the CLI ---------------------------------------------------------------------------

runner = CliRunner()


@pytest.fixture(scope="module")
def events_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sim = simulate(n_users=200, n_items=100)
    path = tmp_path_factory.mktemp("data") / "events.csv"
    columns = ["user_id", "item_id", "timestamp", "event_type", "session_id"]
    sim.events[columns].to_csv(path, index=False)
    return path


def test_cli_evaluate_writes_the_report(
    events_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "report.html"
    args = ["evaluate", "--data", str(events_file), "--models", "popular,itemknn"]
    args += ["--split", "temporal:0.8", "--report", str(out)]
    monkeypatch.setattr(sys, "argv", ["/venv/bin/recsmith", *args])
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.stderr
    assert f"report written to {out}" in result.stderr  # soft-wrapped: a path stays whole
    page = out.read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") >= 4
    assert "recsmith evaluate --data" in page and f"--report {out}" in page
    fingerprint = events_fingerprint(load_events(events_file, None, Settings()))
    assert f'class="fingerprint">{fingerprint}<' in page
    assert "interaction_head_share" in page
    for model in ("popular", "itemknn"):
        assert f'<tr data-model="{model}">' in page


def test_cli_evaluate_ends_with_the_same_verdict_everywhere(
    events_file: Path, tmp_path: Path
) -> None:
    """Table, --json and report carry one verdict; 200 simulated users on a 0.95 time cut are
    too few to separate popular from itemknn, so the warning and its split advice show too."""
    out, js = tmp_path / "report.html", tmp_path / "r.json"
    args = ["evaluate", "--data", str(events_file), "--models", "popular,itemknn"]
    args += ["--split", "temporal:0.95", "--report", str(out), "--json", str(js)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.stderr
    verdict = json.loads(js.read_text())["verdict"]
    comparison = json.loads(js.read_text())["comparisons"][0]
    assert verdict["users_needed"] == comparison["users_needed"] > verdict["evaluated_users"]
    assert verdict["users_in_data"] == 200 and verdict["suggested_split"] == "leave-last-out"
    stdout = " ".join(result.stdout.split())
    page = " ".join(out.read_text(encoding="utf-8").split())
    for said in (verdict["text"], verdict["warning"]):
        assert said in stdout and html.escape(said) in page
    assert stdout.rstrip().endswith(f"verdict: {verdict['text']}")


def test_cli_evaluate_without_matplotlib_fails_before_evaluating(
    events_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    out = tmp_path / "report.html"
    result = runner.invoke(app, ["evaluate", "--data", str(events_file), "--report", str(out)])
    assert result.exit_code == 3
    assert "matplotlib is not installed: pip install 'recsmith[report]'" in result.stderr
    assert "ndcg" not in result.stdout  # no table printed: it stopped before the work
    assert not out.exists()


def test_plots_fill_the_page_and_legends_sit_outside_the_axes(
    tmp_path: Path, evaluated: tuple[list[ModelResult], dict]
) -> None:
    """Every plot is drawn at least as wide as the page's 72rem (1152 px) column, less the
    whitespace bbox_inches="tight" trims, and the curves' and popularity legends overlap no
    axes (inside one, they covered a curve and the bar tops)."""
    page = write(tmp_path / "r.html", evaluated)
    pngs = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(pngs) == 4
    for data in pngs:
        header = base64.b64decode(data)[:24]  # PNG signature, IHDR length and type, width
        assert int.from_bytes(header[16:20], "big") >= 1050
    assert "img{width:100%" in page
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    results, stats = evaluated
    figure = require_matplotlib()
    figures = [
        curves_figure(figure, results),
        popularity_figure(figure, results, stats.get("interaction_head_share", 0.5)),
    ]
    for fig in figures:
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        renderer = canvas.get_renderer()
        legends = fig.legends + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
        assert len(legends) == 1
        box = legends[0].get_window_extent(renderer)
        for ax in fig.axes:
            assert not box.overlaps(ax.get_window_extent(renderer)), fig.get_label()
