"""The published OpenAPI schema is what the server does: schema-driven fuzzing finds no server
error and no mismatch.

Schemathesis (the ``dev`` extra) reads ``/openapi.json`` from a real server and sends what the
schema allows and what it forbids, through all its phases (examples, coverage, fuzzing,
stateful), with every check on: no 5xx; each status, content type, header and body as documented;
schema-valid requests accepted and schema-violating ones refused. The seed is fixed and the
budget bounded (examples per operation, and a time cap), so a run is repeatable and fits CI.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from live_server import live_server

from recsmith.config import Settings
from recsmith.serving import create_api_key
from recsmith.store.sqlite import SQLiteStore

pytestmark = pytest.mark.slow

SEED = 1
EXAMPLES = 5  # per operation and phase
MAX_SECONDS = 40  # the fuzzer's own cap: the whole test stays under a minute on 2 cores

#: Mismatches that another part of issue #11 removes ("door": what ids may hold, and the
#: ``{item_id:path}`` routes), as (check code, operation) -> why. Anything else fails the test.
#: Delete an entry once its fix is merged.
ACCEPTED = {
    ("ST204", "PUT /v1/items/{item_id}/similar"): "door: {item_id:path} lets '/' into item ids, "
    "so PUT /v1/items/x/similar reaches the PUT item route instead of answering 405",
    ("ST204", "PUT /v1/items/{item_id}/together"): "door: as above",
    ("ST202", "GET /v1/items/{item_id}/similar"): "door: path ids are published as any string; "
    "an id with a control character is refused (422) by a rule the schema does not state",
    ("ST202", "GET /v1/items/{item_id}/together"): "door: as above",
    ("ST202", "GET /v1/users/{user_id}/recommendations"): "door: as above",
    ("ST202", "Stateful tests"): "door: as above, for the ids the stateful phase sends to "
    "PUT/PATCH /v1/items/{item_id} (the JSON report names no operation for this phase)",
}


def test_responses_match_the_published_schema(tmp_path: Path, bundle_dir: Path) -> None:
    db_path = tmp_path / "fuzz.sqlite"
    setup = SQLiteStore(db_path)
    _, secret = create_api_key(setup, "fuzz", ["ingest", "read", "admin"])
    setup.close()
    settings = Settings(store={"url": f"sqlite:///{db_path}"}, serving={"model_dir": bundle_dir})
    report = tmp_path / "report.json"
    with live_server(settings, tmp_path) as server:
        run = subprocess.run(
            [
                sys.executable,  # schemathesis is a dev dependency: missing, the test fails
                "-m",
                "schemathesis.cli",
                "run",
                f"{server.base}/openapi.json",
                "--header",
                f"Authorization: Bearer {secret}",
                "--checks",
                "all",
                "--seed",
                str(SEED),
                "--max-examples",
                str(EXAMPLES),
                "--max-time",
                str(MAX_SECONDS),
                "--workers",
                "1",
                "--generation-database",
                "none",
                "--no-color",
                "--report",
                "json",
                "--report-json-path",
                str(report),
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=MAX_SECONDS + 60,
            check=False,
        )
    assert report.is_file(), run.stdout + run.stderr
    result = json.loads(report.read_text())
    found = {(f["code"], op) for f in result["failures"] for op in f["operations"]}
    unexpected = sorted(found - ACCEPTED.keys())
    assert not unexpected, f"{unexpected}\n{run.stdout[-20_000:]}"
    assert not result["errors"], result["errors"]
    assert result["operations"]["tested"] == result["operations"]["total"] == 13
    ran = {name for name, phase in result["phases"].items() if phase["status"] != "skipped"}
    assert ran == {"examples", "coverage", "fuzzing", "stateful"}, result["phases"]
