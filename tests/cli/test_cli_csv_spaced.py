"""A CSV written with a space after each delimiter (``user_id, item_id, timestamp``): its header
names were read stripped but its values were not, so ``u1, i1`` trained and stored the item
`` i1``, which no request for ``i1`` finds. The header's style now decides: where every name
after the first starts with a space, so does every value, and that space is not the id's."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from popular_model import popular_model
from typer.testing import CliRunner

from recsmith.cli.app import app

pytestmark = pytest.mark.usefixtures("audit_store")

runner = CliRunner()


def _popular_for_a_stranger(tmp_path: Path, text: str) -> list[str]:
    """The items popularity lists for a user it never saw, as ``recommend`` writes them."""
    args = ["-q", *popular_model(runner, tmp_path, text, "stranger")]
    result = runner.invoke(app, [*args, "--no-log-decisions"])
    assert result.exit_code == 0, result.output
    return [row["item_id"] for row in csv.DictReader(io.StringIO(result.stdout))]


def test_a_spaced_file_stores_the_ids_without_the_space(tmp_path: Path) -> None:
    # by hand: i1 has 2 users, " i2" (quoted: its space is the id's) 1
    text = (
        "user_id, item_id, timestamp\n"
        "u1, i1, 1700000000\n"
        'u2, i1, 1700000001\nu2, " i2", 1700000002\n'
    )
    assert _popular_for_a_stranger(tmp_path, text) == ["i1", " i2"]


def test_a_file_without_the_style_keeps_a_leading_space(tmp_path: Path) -> None:
    # the header has no spaces: a value's leading space is part of the id, exactly as sent
    text = "user_id,item_id,timestamp\nu1, i1,1700000000\nu2, i1,1700000001\nu2,i1,1700000002\n"
    assert _popular_for_a_stranger(tmp_path, text) == [" i1", "i1"]
