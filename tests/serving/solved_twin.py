"""A FastAPI-solved twin of a router's routes: the oracle the ``DirectRoute`` read routes are held
to. The same endpoints, declarations and router dependencies are added again under ``/twin`` as
plain ``AllowEveryMethod`` routes, which FastAPI solves per request (``solve_dependencies``), so
a direct route and its twin answer the same request side by side in one app, on one store."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

from recsmith.serving.allowed_methods import AllowEveryMethod

TWIN = "/twin"
_ID = re.compile(rb'"recommendation_id":"[0-9a-f]{32}"')


def add_twin(app: FastAPI, router: APIRouter) -> FastAPI:
    """``app`` with ``router``'s routes also served, FastAPI-solved, under ``TWIN``."""
    twin = APIRouter(
        prefix=TWIN,
        tags=router.tags,
        dependencies=router.dependencies,
        route_class=AllowEveryMethod,
    )
    for route in router.routes:
        assert isinstance(route, APIRoute)
        twin.add_api_route(
            route.path,
            route.endpoint,
            methods=sorted(route.methods),
            response_model=route.response_model,
            summary=route.summary,
            responses=route.responses,
            openapi_extra=route.openapi_extra,
        )
    app.include_router(twin)
    return app


def same_answer(direct: Any, twin: Any) -> None:
    """Two responses equal in status, the headers a client reads and the body's bytes, but for
    the random ``recommendation_id``."""
    assert direct.status_code == twin.status_code, (direct.text, twin.text)
    for name in ("content-type", "allow", "www-authenticate", "retry-after"):
        assert direct.headers.get(name) == twin.headers.get(name), name
    assert _ID.sub(b"ID", direct.content) == _ID.sub(b"ID", twin.content), (direct.text, twin.text)
