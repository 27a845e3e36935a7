"""`recsmith quickstart --no-serve`: data, evaluation, a trained pipeline and a key, end to end."""

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from recsmith.cli.app import app
from recsmith.pipeline.artifact import load_artifact
from recsmith.pipeline.runtime import Pipeline
from recsmith.simulate import simulate
from recsmith.store.open import open_store
from recsmith.testing.ports import free_port

pytestmark = pytest.mark.slow


def test_quickstart_sets_up_a_served_pipeline(tmp_path: Path) -> None:
    target = tmp_path / "qs"
    result = CliRunner().invoke(app, ["quickstart", "--dir", str(target), "--no-serve"])
    assert result.exit_code == 0, result.stderr
    assert "ndcg@10" in result.stdout and "API key (admin, shown once): rsk_" in result.stdout
    # what it serves is evaluated beside the single models, and the table ends with a verdict
    rows = re.findall(r"^│ (\w+) +│ +\d", result.stdout, flags=re.MULTILINE)
    assert rows == ["popular", "itemknn", "ials", "ease", "pipeline"]
    assert re.search(r"^verdict: ", result.stdout, flags=re.MULTILINE)
    assert "3/4 trained the default pipeline" in result.stderr and "ranker " in result.stderr
    assert f"recsmith -c {target / 'recsmith.toml'} serve\n" in result.stdout  # how to serve it
    # each "Try:" line runs in any shell (``open`` is macOS's): curl, or a comment with the URL
    tried = result.stdout.split("Try:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert [line.split()[0] for line in tried] == ["curl", "curl", "curl", "#"], tried
    assert tried[-1].endswith("in a browser: http://127.0.0.1:8000/docs")
    config = (target / "recsmith.toml").read_text()
    assert "[store]" in config and "[serving]" in config
    served = load_artifact(target / "model")
    assert isinstance(served, Pipeline)
    assert json.loads((target / "model" / "manifest.json").read_text())["kind"] == "pipeline"
    store = open_store(f"sqlite:///{target / 'recsmith.sqlite'}")
    try:
        assert store.count_events() > 10_000 and len(store.items()) == 1000
    finally:
        store.close()


@pytest.mark.timeout(900)  # two quickstarts, training included: minutes under load
def test_rerun_serves_the_new_port_and_its_example_names_a_real_item(tmp_path: Path) -> None:
    """A second run with another --port serves there (the first run's config said otherwise),
    and the printed event example names an item of the imported data, not the simulator's."""
    sim = simulate(n_users=300, n_items=200, seed=3)
    events = sim.events.assign(item_id="sku-" + sim.events["item_id"])
    data = tmp_path / "events.csv"
    events[["user_id", "item_id", "timestamp", "event_type"]].to_csv(data, index=False)
    target, first, second = tmp_path / "qs", free_port(), free_port()
    common = ["quickstart", "--dir", str(target), "--dataset", str(data), "--format", "events"]

    result = CliRunner().invoke(app, [*common, "--port", str(first), "--no-serve"])
    assert result.exit_code == 0, result.stderr
    example = re.search(r'"item_id": "([^"]+)"', result.stdout)
    assert example is not None and example.group(1) in set(events["item_id"])
    assert f"http://127.0.0.1:{first}/v1/popular" in result.stdout

    proc = subprocess.Popen(
        [sys.executable, "-m", "recsmith", *common, "--port", str(second)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 300  # its set-up and start: over 120 s at load 12-16
        while True:
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, f"nothing answers on the new port {second}"
            try:
                if httpx.get(f"http://127.0.0.1:{second}/health/live", timeout=1).is_success:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert f"http://127.0.0.1:{second}/v1/popular" in out
    assert f":{first}/" not in out
    assert f"--port {second} overrides its port {first}" in out
