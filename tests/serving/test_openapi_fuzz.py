"""The published OpenAPI schema is what the server does: schema-driven fuzzing finds no server
error and no mismatch.

Schemathesis (the ``dev`` extra) reads ``/openapi.json`` from a real server and sends what the
schema allows and what it forbids, through all its phases (examples, coverage, fuzzing,
stateful), with every check on: no 5xx; each status, content type, header and body as documented;
schema-valid requests accepted and schema-violating ones refused. The seed is fixed and the
budget bounded (examples per operation), so a run is repeatable and fits CI.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from live_server import live_server

from recsmith.config import Settings
from recsmith.serving import create_api_key, create_app
from recsmith.store.sqlite import SQLiteStore

pytestmark = pytest.mark.slow

SEED = 1
EXAMPLES = 12  # per operation and phase: a complete run is ~25 s on 2 cores
#: A hang guard only: ``--max-time`` is not used, since with it the fuzzer keeps generating
#: until the time is up, so which cases ran would depend on the machine's speed.
TIMEOUT_S = 600  # on a loaded 2-core machine a complete run has taken 160 s


@dataclass(frozen=True)
class Case:
    operation: str
    codes: tuple[str, ...]
    status: int
    body: str


def failing_cases(stdout: str) -> list[Case]:
    """The failing test cases the CLI prints: under each ``___ OPERATION ___`` header, numbered
    cases listing ``- STxxx`` checks and the ``[status]`` response with its body in backticks."""
    cases = []
    parts = re.split(r"^_{3,} (.+?) _{3,}$", stdout, flags=re.M)
    for operation, text in zip(parts[1::2], parts[2::2], strict=True):
        for case in re.split(r"^\d+\. Test Case ID: \S+$", text, flags=re.M)[1:]:
            response = re.search(r"^\[(\d{3})\][^\n]*\n\s*`(.*)`$", case, flags=re.M)
            status, body = (int(response[1]), response[2]) if response else (0, "")
            codes = tuple(re.findall(r"^- (ST\d{3}) ", case, flags=re.M))
            cases.append(Case(operation, codes, status, body))
    return cases


def test_responses_match_the_published_schema(tmp_path: Path, bundle_dir: Path) -> None:
    db_path = tmp_path / "fuzz.sqlite"
    setup = SQLiteStore(db_path)
    _, secret = create_api_key(setup, "fuzz", ["ingest", "read", "admin"])
    setup.close()
    settings = Settings(
        store={"url": f"sqlite:///{db_path}"},
        serving={"model_dir": bundle_dir},
        privacy={"erase_settle_s": 0},  # an erasure's second sweep would cost 2.5 s per DELETE
    )
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
            timeout=TIMEOUT_S,
            check=False,
        )
    assert report.is_file(), run.stdout + run.stderr
    result = json.loads(report.read_text())
    cases = failing_cases(run.stdout)
    # the printed cases are the report's failures: a change of output format cannot pass silently
    printed = {(code, case.operation) for case in cases for code in case.codes}
    reported = {(f["code"], op) for f in result["failures"] for op in f["operations"]}
    assert printed == reported, (printed, reported)
    failures = [
        (case.operation, code, case.status, case.body[:200])
        for case in cases
        for code in case.codes
    ]
    assert not failures, f"{failures}\n{run.stdout[-20_000:]}"
    assert not result["errors"], result["errors"]
    # every operation the app publishes was fuzzed (counted from FastAPI's schema, not the fuzzer's)
    published = create_app(settings).openapi()["paths"]
    operations = sum(len(methods) for methods in published.values())
    assert operations >= 20
    assert result["operations"]["tested"] == result["operations"]["total"] == operations
    assert result["stop_reason"] == "completed", result["stop_reason"]
    ran = {name for name, phase in result["phases"].items() if phase["status"] != "skipped"}
    assert ran == {"examples", "coverage", "fuzzing", "stateful"}, result["phases"]
