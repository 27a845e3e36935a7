"""``/``, ``/docs``, ``/redoc`` and ``/openapi.json``: what a person opening the server in a
browser finds. The last three are open, behind any valid key, or off (``auth.expose_docs``).

FastAPI's own docs pages load Swagger UI and ReDoc from a CDN (and a favicon and fonts from other
hosts), so behind a firewall or on a machine without internet they are blank. A self-hosted
engine serves those assets itself: they come from the ``fastapi-offline`` package (the
Swagger UI and ReDoc bundles, nothing else of it is used), mounted under ``ASSETS_PATH``, and the
pages name no other host. ``/`` answers the name, version and where to go next instead of a 404.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from recsmith import __version__
from recsmith.serving.auth import require_exposure

#: Where the Swagger UI and ReDoc files are served from (same host as the API).
ASSETS_PATH = "/docs-assets"
DOCS_PATH = "/docs"
REDOC_PATH = "/redoc"
OPENAPI_PATH = "/openapi.json"

router = APIRouter(include_in_schema=False)
docs_exposure = Depends(require_exposure("docs"))


class FrontDoor(BaseModel):
    """The body of ``GET /``."""

    name: str
    version: str
    links: dict[str, str]


def assets_dir() -> Path:
    """The installed package's static files (``swagger-ui-bundle.js``, ``swagger-ui.css``,
    ``redoc.standalone.js``, ``favicon.png``)."""
    return Path(str(files("fastapi_offline") / "static"))


def _prefix(request: Request) -> str:
    """The path the app is mounted under behind a proxy (``--root-path``), so links resolve."""
    return str(request.scope.get("root_path", "")).rstrip("/")


@router.get("/")
async def front_door(request: Request) -> FrontDoor:
    """Name, version and links: the first thing a browser or ``curl`` on the bare host sees."""
    root = _prefix(request)
    return FrontDoor(
        name="recsmith",
        version=__version__,
        links={
            "docs": f"{root}{DOCS_PATH}",
            "redoc": f"{root}{REDOC_PATH}",
            "openapi": f"{root}{OPENAPI_PATH}",
            "health": f"{root}/health/ready",
        },
    )


@router.get(OPENAPI_PATH, dependencies=[docs_exposure])
async def openapi(request: Request) -> JSONResponse:
    """The OpenAPI schema (built once per app, then kept by FastAPI)."""
    return JSONResponse(request.app.openapi())


@router.get(DOCS_PATH, dependencies=[docs_exposure])
async def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI with its script, stylesheet and icon from this server."""
    root = _prefix(request)
    return get_swagger_ui_html(
        openapi_url=f"{root}{OPENAPI_PATH}",
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
        swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
    )


@router.get(REDOC_PATH, dependencies=[docs_exposure])
async def redoc(request: Request) -> HTMLResponse:
    """ReDoc with its script and icon from this server, and no web fonts (they come from Google
    Fonts; ReDoc falls back to the system's)."""
    root = _prefix(request)
    return get_redoc_html(
        openapi_url=f"{root}{OPENAPI_PATH}",
        title=f"{request.app.title} - ReDoc",
        redoc_js_url=f"{root}{ASSETS_PATH}/redoc.standalone.js",
        redoc_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
        with_google_fonts=False,
    )


def install(app: FastAPI) -> None:
    """Add the front door, the schema and the docs assets to ``app`` (created with
    ``docs_url``, ``redoc_url`` and ``openapi_url`` None, so FastAPI's unguarded routes and CDN
    pages do not shadow these)."""
    app.include_router(router)
    app.mount(ASSETS_PATH, StaticFiles(directory=assets_dir()), name="docs-assets")
