"""Which address counts as local when ``auto`` decides who may read metrics and docs."""

from __future__ import annotations

import pytest

from recsmith.access.exposure import Exposure, resolve


@pytest.mark.parametrize(
    ("setting", "host", "mode"),
    [
        ("auto", "127.0.0.1", "open"),
        ("auto", "127.8.9.10", "open"),
        ("auto", "localhost", "open"),
        ("auto", "::1", "open"),
        ("auto", "[::1]", "open"),
        ("auto", "0.0.0.0", "key"),
        ("auto", "::", "key"),
        ("auto", "10.1.2.3", "key"),
        ("auto", "recs.example.com", "key"),
        ("open", "0.0.0.0", "open"),
        ("key", "127.0.0.1", "key"),
        ("off", "127.0.0.1", "off"),
    ],
)
def test_auto_is_open_only_on_a_loopback_address(setting: Exposure, host: str, mode: str) -> None:
    assert resolve(setting, host) == mode
