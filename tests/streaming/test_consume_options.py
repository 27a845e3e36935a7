"""``recsmith consume``'s usage errors name the option and exit 2; an unreachable broker exits 3
naming it (nothing is consumed, so nothing can be lost)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from recsmith.cli.app import app


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ([], "--redis-stream/--nats: give exactly one broker"),
        (["--redis-stream", "redis://x", "--nats", "nats://x"], "give exactly one broker"),
        (["--redis-stream", "redis://x"], "--group: required with --redis-stream"),
        (["--redis-stream", "redis://x", "--group", "g", "--durable", "d"], "--durable: is for"),
        (["--nats", "nats://x", "--durable", "d", "--group", "g"], "are for --redis-stream"),
        (["--nats", "nats://x"], "--durable: required with --nats"),
    ],
)
def test_options_that_do_not_name_one_broker_are_usage_errors(
    options: list[str], message: str
) -> None:
    result = CliRunner().invoke(app, ["consume", "--stream", "s", *options])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_an_unreachable_broker_fails_naming_it() -> None:
    url = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    result = CliRunner().invoke(
        app, ["consume", "--stream", "s", "--redis-stream", url, "--group", "g"]
    )
    assert result.exit_code == 3
    assert f"broker {url}" in " ".join(result.output.split())
