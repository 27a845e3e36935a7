"""The ``evaluate`` line quickstart suggests reproduces the table quickstart printed.

quickstart compares popular, itemknn, ials, ease and the pipeline it serves; its suggestion used
to be a bare ``evaluate`` (popular, itemknn and ials only), so a user could not get back to what
they had just seen. Here the printed line is run verbatim in the directory quickstart ran in, and
its accuracy table must equal quickstart's, row for row (fit seconds aside), under a config with
time decay (which quickstart must apply as evaluate does). The store holds user profiles, so
quickstart must fit its pipelines on them as ``evaluate --pipeline`` and ``train --pipeline`` do:
the pipelines it fitted are recorded and must report the profiled users, and both must be fitted
with the config's half-life (the served one too, which the table cannot show).

A small shop (120 users, 100 items): the default pipeline is fitted three times (quickstart's
evaluation, its served pipeline, the evaluate line's), and at 300 x 200 that took over 300 s
wall on a loaded machine.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import recsmith.cli.quickstart as quickstart_module
import recsmith.evaluation.runner as runner_module
from recsmith.bundle import read_manifest
from recsmith.cli.app import app
from recsmith.cli.quickstart import command_name
from recsmith.events.schema import User
from recsmith.pipeline.artifact import train_pipeline
from recsmith.pipeline.runtime import Pipeline
from recsmith.simulate import simulate

pytestmark = pytest.mark.slow
PROFILED = 60
HALF_LIFE_DAYS = 20


def _accuracy_rows(output: str) -> list[list[str]]:
    """The first table's rows (model and its metric cells), without the fit-seconds column."""
    rows: list[list[str]] = []
    for line in output.splitlines():
        if line.startswith("└") and rows:
            break
        if re.match(r"^│ \w+ +│ +\d", line):
            rows.append([cell.strip() for cell in line.strip("│").split("│")][:-1])
    return rows


@pytest.mark.timeout(900)
def test_the_suggested_evaluate_line_reproduces_quickstarts_table(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    store_tiers: Callable[[str, Sequence[str]], list[User]],
) -> None:
    monkeypatch.chdir(tmp_path)
    sim = simulate(n_users=120, n_items=100, seed=3)
    data = tmp_path / "events.csv"
    sim.events[["user_id", "item_id", "timestamp", "event_type"]].to_csv(data, index=False)
    # a config quickstart keeps (an edited one: time decay on), and profiles in its store
    home = tmp_path / "recsmith-data"
    home.mkdir()
    url = f"sqlite:///{home / 'recsmith.sqlite'}"
    (home / "recsmith.toml").write_text(
        f'[store]\nurl = "{url}"\n[serving]\nmodel_dir = "{home / "model"}"\n'
        f"[features]\nhalf_life_days = {HALF_LIFE_DAYS}\n"
    )
    store_tiers(url, sorted(sim.events["user_id"].unique())[:PROFILED])
    fitted: list[Pipeline] = []
    half_lives: list[float | None] = []

    def recorded(*args: Any, **kwargs: Any) -> Pipeline:  # the real training, its result kept
        half_lives.append(kwargs.get("half_life_days"))
        fitted.append(train_pipeline(*args, **kwargs))
        return fitted[-1]

    monkeypatch.setattr(runner_module, "train_pipeline", recorded)
    monkeypatch.setattr(quickstart_module, "train_pipeline", recorded)
    args = ["quickstart", "--no-serve", "--dataset", str(data), "--format", "events"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.stderr
    shown = _accuracy_rows(result.stdout)
    assert [row[0] for row in shown] == ["popular", "itemknn", "ials", "ease", "pipeline"]
    # the evaluated pipeline and the served one were fitted on the store's profiles
    assert [p.manifest["segments"]["profiled_users"] for p in fitted] == [PROFILED, PROFILED]
    assert half_lives == [HALF_LIFE_DAYS, HALF_LIFE_DAYS]  # evaluated and served alike
    served = read_manifest(home / "model")
    assert served["segments"]["profiled_users"] == PROFILED

    line = next(
        line.strip()
        for line in result.stdout.splitlines()
        if line.strip().startswith(f"{command_name()} ") and " evaluate" in line
    )
    words = shlex.split(line)  # how this shell calls recsmith: its name or the venv's script
    assert words[0] == shlex.split(command_name())[0]
    again = subprocess.run(
        [sys.executable, "-m", "recsmith", *words[1:]],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert again.returncode == 0, again.stderr
    assert _accuracy_rows(again.stdout) == shown
