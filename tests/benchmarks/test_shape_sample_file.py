"""A shape_sweep sample written by ``benchmarks/shape_sample_file.py`` reads back through
recsmith's events importer as the same events: what ``peers.py --events-file`` trains the peers on
must be the sample the sweep scores."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import shape_sample_file

from recsmith.config import EventSettings
from recsmith.events.importers.base import read_source
from recsmith.events.validate import validate_events


def test_written_sample_reads_back_as_the_same_events(tmp_path: Path) -> None:
    ts = np.array([1_700_000_000_123_456, 1_700_000_060_000_001, 1_700_003_600_999_999])
    sample = pd.DataFrame(
        {
            "user_id": ["u1", "007", "u1"],  # "007" stays a string, not 7
            "item_id": ["i9", "i2", "0042"],
            "event_type": ["rating", "view", "rating"],
            "value": [4.0, np.nan, 2.5],
            "ts": ts,
            "session_id": None,
        }
    )
    path = tmp_path / "sample.csv"
    shape_sample_file.write_events(sample, path)
    chunks = [
        validate_events(chunk.rows, EventSettings(), offset=chunk.offset)
        for chunk in read_source("events", path).events
    ]
    assert all(len(bad) == 0 for _, bad in chunks)
    back = pd.concat([valid for valid, _ in chunks], ignore_index=True)
    assert list(back["user_id"]) == ["u1", "007", "u1"]
    assert list(back["item_id"]) == ["i9", "i2", "0042"]
    assert list(back["event_type"]) == ["rating", "view", "rating"]
    assert back["ts"].astype(np.int64).tolist() == ts.tolist()  # microseconds, to the unit
    assert back["value"].iloc[[0, 2]].tolist() == [4.0, 2.5]
