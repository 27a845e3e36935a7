"""FastAPI's native telemetry: off where no OpenTelemetry SDK could configure a provider, left to
FastAPI where one is installed."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.telemetry._api import _unconfigured
from fastapi.testclient import TestClient
from opentelemetry import trace

from recsmith.serving import otel_switch
from recsmith.serving.otel_switch import fastapi_telemetry


def test_without_an_sdk_every_signal_is_off_and_no_provider_is_asked() -> None:
    """The venv has the OpenTelemetry API only (FastAPI's dependency): the providers are
    FastAPI's known deferred ones, and the app built with the switch never asks them."""
    assert importlib.util.find_spec("opentelemetry.sdk") is None
    assert _unconfigured(trace.get_tracer_provider())  # nothing configured one
    app = FastAPI(telemetry=fastapi_telemetry())
    asked: list[str] = []
    real = trace.get_tracer_provider

    def counted() -> Any:
        asked.append("tracer")
        return real()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(trace, "get_tracer_provider", counted)
        assert app._native_telemetry.enabled() is False
        assert asked == []
        assert FastAPI()._native_telemetry.enabled() is False and asked == ["tracer"]


def test_with_an_sdk_fastapi_keeps_its_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """An installed SDK could configure a provider: FastAPI's instrumentation stays on."""
    found = importlib.util.find_spec("json")  # any spec: as if the SDK were importable
    monkeypatch.setattr(
        otel_switch.importlib.util,
        "find_spec",
        lambda name: found if name == "opentelemetry.sdk" else None,
    )
    assert fastapi_telemetry() is None
    config = FastAPI(telemetry=fastapi_telemetry())._telemetry
    assert config["tracing"] and config["metrics"] and config["logs"]


def test_the_served_app_is_built_with_the_switch(client: TestClient) -> None:
    """``create_app``'s FastAPI has every signal off here (no SDK in this venv)."""
    config = client.app._telemetry  # type: ignore[attr-defined]
    assert (config["tracing"], config["metrics"], config["logs"]) == (False, False, False)
