"""`train` writes its output all at once: a failure leaves the previous --out as it was and no
half-written directory; a finished run replaces the old model whole.

The mid-save failure is real, not injected: the training process runs with a file-size limit
(RLIMIT_FSIZE, SIGXFSZ ignored), so its small files are written and the first large one fails
with EFBIG, as on a disk that fills during the save.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from recsmith.cli.app import app
from recsmith.config import EventSettings
from recsmith.events.schema import Item
from recsmith.events.validate import validate_events
from recsmith.pipeline.artifact import load_artifact
from recsmith.simulate import simulate
from recsmith.store.sqlite import SQLiteStore

runner = CliRunner()
RECSMITH = (sys.executable, "-m", "recsmith")
SURROGATE = "a\ud800"  # a lone UTF-16 surrogate: a str, but not encodable as UTF-8


def _files(root: Path) -> dict[str, str]:
    """Every file under ``root`` → its sha256 (the oracle for "untouched")."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _limited_train(events_csv: Path, out: Path, model: str) -> subprocess.CompletedProcess[str]:
    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of death by signal
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    return subprocess.run(
        [*RECSMITH, "-q", "train", "--data", str(events_csv), "--model", model, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limit,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )


def _train(events_csv: Path, out: Path, model: str) -> None:
    result = runner.invoke(
        app, ["-q", "train", "--data", str(events_csv), "--model", model, "--out", str(out)]
    )
    assert result.exit_code == 0, result.stderr


def test_a_failed_save_leaves_the_previous_model_untouched(events_csv: Path, tmp_path: Path):
    out = tmp_path / "model"
    _train(events_csv, out, "itemknn")
    before = _files(out)
    failed = _limited_train(events_csv, out, "ials")
    assert failed.returncode == 3, failed.stderr
    errors = failed.stderr.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("error:"), failed.stderr
    assert str(out) in errors[0] and "File too large" in errors[0]
    assert _files(out) == before  # byte for byte the itemknn model it was
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no staging left behind
    assert load_artifact(out).manifest["model"] == "itemknn"


def test_a_failed_first_save_leaves_no_directory(events_csv: Path, tmp_path: Path) -> None:
    failed = _limited_train(events_csv, tmp_path / "model", "ials")
    assert failed.returncode == 3, failed.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_finished_train_replaces_the_old_model_whole(events_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "model"
    _train(events_csv, out, "ials")
    (out / "model" / "stale.txt").write_text("from the old model")
    _train(events_csv, out, "itemknn")
    assert load_artifact(out).manifest["model"] == "itemknn"
    assert not (out / "model" / "stale.txt").exists()  # a new directory, not files over the old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_a_directory_of_other_files_is_not_replaced(events_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "notes"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = runner.invoke(app, ["train", "--data", str(events_csv), "--out", str(out)])
    assert result.exit_code == 2
    assert "refusing to replace it" in result.stderr and str(out) in result.stderr
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


PIPELINE = """
[[retrieval.sources]]
name = "pop"
model = "popular"
quota = 20
[ranking]
enabled = false
"""


def test_a_catalogue_text_utf8_cannot_encode_is_trained_and_kept(tmp_path: Path) -> None:
    """A lone surrogate stored before the door checked for them (here written past validation)
    used to fail ``save_pipeline`` after ``manifest.json``, leaving a directory without
    ``items.jsonl``; it is escaped in the file and read back as it was stored."""
    events = simulate(n_users=40, n_items=30, seed=5).events
    records = events.assign(event_id=[f"e{n}" for n in range(len(events))]).to_dict("records")
    store = SQLiteStore(tmp_path / "s.sqlite")
    store.append(validate_events(records, EventSettings())[0])
    first, second = sorted(set(events["item_id"]))[:2]
    odd = Item.model_construct(
        item_id=first, categories=[SURROGATE], tags=[], text=None, properties={}, available=True
    )
    store.upsert_items([odd, Item(item_id=second, categories=["plain"])])
    store.close()
    config = tmp_path / "pipeline.toml"
    config.write_text(PIPELINE)
    out = tmp_path / "pipe"
    url = f"sqlite:///{tmp_path / 's.sqlite'}"
    result = runner.invoke(
        app, ["-q", "train", "--store", url, "--pipeline", str(config), "--out", str(out)]
    )
    assert result.exit_code == 0, result.stderr
    assert "\\ud800" in (out / "items.jsonl").read_text()  # escaped, the file is plain ASCII
    catalogue = {item.item_id: item for item in load_artifact(out).items_catalog}
    assert catalogue[first].categories == [SURROGATE]
    assert catalogue[second].categories == ["plain"]
    assert json.loads((out / "manifest.json").read_text())["kind"] == "pipeline"
