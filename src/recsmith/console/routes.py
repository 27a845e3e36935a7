"""``GET /console`` and its assets, from the package's ``static`` directory."""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse, Response

router = APIRouter(include_in_schema=False)
STATIC = files("recsmith.console") / "static"
TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
#: The console is a few KB: served from memory, read once.
_cache: dict[str, bytes] = {}


def _read(name: str) -> bytes:
    if name not in _cache:
        _cache[name] = (STATIC / name).read_bytes()
    return _cache[name]


@router.get("/console", response_class=HTMLResponse)
def console() -> HTMLResponse:
    return HTMLResponse(_read("index.html"), headers={"Cache-Control": "no-store"})


@router.get("/console/assets/{name}")
def asset(name: str) -> Response:
    suffix = name[name.rfind(".") :] if "." in name else ""
    if suffix not in TYPES or "/" in name or not (STATIC / name).is_file():
        raise HTTPException(404, f"no console asset {name!r}")
    return Response(_read(name), media_type=TYPES[suffix])
