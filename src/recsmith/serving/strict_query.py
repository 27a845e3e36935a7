"""Query parameters a route does not take are refused, not ignored.

Starlette hands every query parameter to the app and FastAPI reads only the ones a route
declares, so ``?categories=shoes`` (for ``category``) or ``?diversty=0.3`` would answer an
unfiltered list that looks filtered. A parameter given twice (``?k=1&k=50``) is refused too:
FastAPI kept one value silently, as Python's JSON decoder did with a repeated key. The
dependency here answers 422 naming the parameter (and the ones the route knows), in the same
``{field, reason}`` shape as other input errors.
"""

from __future__ import annotations

from fastapi import HTTPException, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

REPEATED = "given more than once (which value is meant?): every parameter takes one value"
_KNOWN: dict[int, frozenset[str]] = {}  # id(route) -> its query parameter names


def query_names(dependant: Dependant) -> set[str]:
    """The query parameters of a route's handler and of every dependency under it."""
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= query_names(sub)
    return names


def _known(route: APIRoute) -> frozenset[str]:
    names = _KNOWN.get(id(route))
    if names is None:  # once per route: walking the dependency tree is not request work
        names = _KNOWN[id(route)] = frozenset(query_names(route.dependant))
    return names


async def known_query_only(request: Request) -> None:
    """422 for any query parameter the matched route does not declare (async: a plain function
    would cost every request a hop to the thread pool)."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not request.query_params:
        return
    given = request.query_params.multi_items()
    if len(given) != len(request.query_params):  # FastAPI would keep one value silently
        names = [name for name, _ in given]
        twice = dict.fromkeys(n for i, n in enumerate(names) if n in names[:i])
        raise HTTPException(422, [{"field": name, "reason": REPEATED} for name in twice])
    known = _known(route)
    unknown = [name for name in request.query_params if name not in known]
    if unknown:
        takes = ", ".join(sorted(known)) or "none"
        raise HTTPException(
            422,
            [
                {"field": name, "reason": f"unknown query parameter (this route takes: {takes})"}
                for name in dict.fromkeys(unknown)
            ],
        )
