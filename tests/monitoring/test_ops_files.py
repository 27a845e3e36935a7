"""The shipped Prometheus alert rules and Grafana dashboard: valid for promtool, firing when they
should, and naming only metrics and labels the server (or a stream consumer) really exports.

CI installs Debian's prometheus package (for promtool) and sets ``RECSMITH_REQUIRE_PROMTOOL=1``;
elsewhere the promtool tests skip when it is missing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from recsmith.config import Settings
from recsmith.serving.app import create_app
from recsmith.streaming.metrics import StreamMetrics

OPS = Path(__file__).resolve().parents[2] / "ops"
RULES = OPS / "prometheus" / "recsmith-alerts.yml"
RULE_TESTS = OPS / "prometheus" / "recsmith-alerts.test.yml"
DASHBOARD = OPS / "grafana" / "recsmith-dashboard.json"
#: Sample names a metric family of each type exposes besides its own name.
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gauge": ("",),
}
#: Label names PromQL itself adds or matches (not ours).
PROMQL_LABELS = {"le"}


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("RECSMITH_REQUIRE_PROMTOOL") == "1":
            pytest.fail("promtool is required (apt-get install prometheus)")
        pytest.skip("promtool not installed (apt-get install prometheus)")
    return found


def _expressions() -> list[str]:
    rules = yaml.safe_load(RULES.read_text())
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    panels = json.loads(DASHBOARD.read_text())["panels"]
    exprs += [t["expr"] for p in panels for t in p.get("targets", [])]
    return exprs


def test_promtool_accepts_the_rules_and_their_unit_tests_pass() -> None:
    promtool = _promtool()
    checked = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True)
    assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()
    tested = subprocess.run(
        [promtool, "test", "rules", RULE_TESTS.name], cwd=RULE_TESTS.parent, capture_output=True
    )
    assert tested.returncode == 0, tested.stdout.decode() + tested.stderr.decode()


def test_the_rule_tests_catch_a_wrong_threshold(tmp_path: Path) -> None:
    """The unit tests have teeth: the error-rate alert at 10 % instead of 1 % misses the 5 %
    error rate the tests feed it, and promtool says so."""
    promtool = _promtool()
    (tmp_path / RULES.name).write_text(
        RULES.read_text().replace("[5m])) > 0.01", "[5m])) > 0.1", 1)
    )
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    tested = subprocess.run(
        [promtool, "test", "rules", RULE_TESTS.name], cwd=tmp_path, capture_output=True
    )
    assert tested.returncode != 0
    assert "RecsmithHighErrorRate" in tested.stdout.decode() + tested.stderr.decode()


def test_every_metric_and_label_queried_is_exported(tmp_path: Path) -> None:
    settings = Settings(
        store={"url": f"sqlite:///{tmp_path / 's.sqlite'}"}, serving={"allow_no_model": True}
    )
    app = create_app(settings)
    with TestClient(app) as client:
        text = client.get("/metrics").text
        registry = app.state.runtime.metrics.registry
    # what a stream consumer (``recsmith consume --metrics-port``) exports, beside the server
    consumer = StreamMetrics.create().registry
    text += generate_latest(consumer).decode()
    exported: set[str] = set()
    for family in text_string_to_metric_families(text):
        exported |= {family.name + suffix for suffix in SUFFIXES.get(family.type, ("",))}
    # label names of every collector (families with no series yet list none in the text)
    labels = {
        name
        for reg in (registry, consumer)
        for collector in reg._collector_to_names  # private: no public accessor
        for name in getattr(collector, "_labelnames", ())
    }
    exprs = _expressions()
    assert len(exprs) >= 20
    queried = {name for e in exprs for name in re.findall(r"\brecsmith_[a-z0-9_]+\b", e)}
    assert queried - exported == set(), f"not exported: {sorted(queried - exported)}"
    used_labels = {
        name for e in exprs for name in re.findall(r"\b([a-z_]+)\s*(?:=~|!=|!~|=)\s*\"", e)
    } | {
        name.strip()
        for e in exprs
        for group in re.findall(r"\bby \(([^)]*)\)", e)
        for name in group.split(",")
    }
    assert used_labels - labels - PROMQL_LABELS == set()
