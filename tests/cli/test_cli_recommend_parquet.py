"""``recommend --out recs.parquet`` writes Parquet (it wrote CSV under that name, which no Parquet
reader opens: "Parquet magic bytes not found"), with ids as strings, exactly as given."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from popular_model import popular_model
from typer.testing import CliRunner

from recsmith.cli.app import app

pytestmark = pytest.mark.usefixtures("audit_store")

runner = CliRunner()

#: item "007" has 3 users, "1e5" 2, "10" 1: popularity's list for anyone new, by hand.
EVENTS = """user_id,item_id,timestamp
a,007,1700000000
b,007,1700000001
b,1e5,1700000002
c,007,1700000003
c,1e5,1700000004
c,10,1700000005
"""


@pytest.mark.parametrize("name", ["recs.parquet", "RECS.PARQUET"])
def test_a_parquet_name_gets_parquet(tmp_path: Path, name: str) -> None:
    out = tmp_path / name
    args = [*popular_model(runner, tmp_path, EVENTS, "new"), "--k", "3"]
    result = runner.invoke(app, [*args, "--no-log-decisions", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert pq.read_table(out).to_pylist() == [
        {"user_id": "new", "item_id": "007", "rank": 1, "score": 3.0, "sources": "popular"},
        {"user_id": "new", "item_id": "1e5", "rank": 2, "score": 2.0, "sources": "popular"},
        {"user_id": "new", "item_id": "10", "rank": 3, "score": 1.0, "sources": "popular"},
    ]
