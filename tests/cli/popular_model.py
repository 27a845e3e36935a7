"""A popularity model trained by the CLI on a given events text, and a users file: the set-up of
tests that read what ``recommend`` writes for someone the model never saw."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from recsmith.cli.app import app


def popular_model(runner: CliRunner, tmp_path: Path, events_text: str, *users: str) -> list[str]:
    """``recommend``'s leading arguments for ``users`` against a ``popular`` model trained on
    ``events_text`` (a CSV) under ``tmp_path``."""
    events = tmp_path / "events.csv"
    events.write_text(events_text)
    model = tmp_path / "model"
    trained = runner.invoke(
        app, ["-q", "train", "--data", str(events), "--model", "popular", "--out", str(model)]
    )
    assert trained.exit_code == 0, trained.output
    users_file = tmp_path / "users.txt"
    users_file.write_text("".join(f"{user}\n" for user in users))
    return ["recommend", "--model-dir", str(model), "--users", str(users_file)]
