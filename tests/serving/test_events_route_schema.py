"""``POST /v1/events`` checks its key itself (``auth.admit``, no security dependencies), so its
published security requirement is declared by hand: it must stay the one every route guarded by
``require_scope`` publishes, with schemes the schema defines."""

from __future__ import annotations

from recsmith.config import Settings
from recsmith.serving.app import create_app


def test_the_events_route_publishes_the_same_key_schemes_as_the_dependency_guarded_routes() -> None:
    schema = create_app(Settings()).openapi()
    events = schema["paths"]["/v1/events"]["post"]["security"]
    guarded = schema["paths"]["/v1/admin/keys"]["get"]["security"]  # require_scope("admin")
    assert events == guarded
    assert {name for requirement in events for name in requirement} == set(
        schema["components"]["securitySchemes"]
    )
