"""Request ids (``X-Request-ID``) and JSON log lines that carry them."""

from __future__ import annotations

import json
import logging
import logging.config
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from recsmith.config import Settings
from recsmith.monitoring.logs import json_log_config
from recsmith.serving.app import create_app

LOGGERS = ("", "uvicorn", "uvicorn.error", "uvicorn.access")


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    settings = Settings(
        store={"url": f"sqlite:///{tmp_path / 's.sqlite'}"}, serving={"allow_no_model": True}
    )
    app = create_app(settings)

    def broken() -> None:
        raise RuntimeError("a bug in a handler")

    app.add_api_route("/broken", broken)
    return app


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """dictConfig changes process-wide logging: put it back for the tests that follow."""
    saved = {
        name: (logger.handlers[:], logger.level, logger.propagate, logger.filters[:])
        for name in LOGGERS
        for logger in [logging.getLogger(name)]
    }
    yield
    for name, (handlers, level, propagate, filters) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:], logger.filters[:] = handlers, filters
        logger.setLevel(level)
        logger.propagate = propagate


def test_a_sent_id_is_echoed_and_names_the_error(app: FastAPI) -> None:
    with TestClient(app, raise_server_exceptions=False) as client:
        bug = client.get("/broken", headers={"X-Request-ID": "checkout-42:a.b"})
        assert bug.status_code == 500
        assert bug.headers["x-request-id"] == "checkout-42:a.b"
        assert bug.json()["error_id"] == "checkout-42:a.b"
        ok = client.get("/health/live", headers={"X-Request-ID": "x1"})
        assert ok.headers["x-request-id"] == "x1"


def test_ids_are_made_up_when_missing_or_not_plain(app: FastAPI) -> None:
    with TestClient(app) as client:
        made = [client.get("/health/live").headers["x-request-id"] for _ in range(3)]
        odd = client.get("/health/live", headers={"X-Request-ID": "two words"})
        long = client.get("/health/live", headers={"X-Request-ID": "a" * 129})
    assert len(set(made)) == 3 and all(len(m) == 32 and int(m, 16) >= 0 for m in made)
    for response in (odd, long):
        replaced = response.headers["x-request-id"]
        assert len(replaced) == 32 and replaced not in made


def test_json_log_lines_carry_the_request_id(
    app: FastAPI, restored_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    logging.config.dictConfig(json_log_config("info"))
    logging.getLogger("recsmith.test").warning("outside any request")
    with TestClient(app, raise_server_exceptions=False) as client:
        client.get("/broken", headers={"X-Request-ID": "req-7"})
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    outside = next(line for line in lines if line["message"] == "outside any request")
    assert outside["request_id"] is None and outside["level"] == "WARNING"
    (error,) = [line for line in lines if line["level"] == "ERROR"]
    assert error["request_id"] == "req-7"
    assert error["logger"] == "recsmith.serving.error_handlers"
    assert "req-7" in error["message"] and "RuntimeError: a bug in a handler" in error["exception"]
    assert set(error) == {"ts", "level", "logger", "message", "request_id", "exception"}
