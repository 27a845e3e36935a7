"""``FastLane``: the app's routing by a dictionary look-up where a linear scan cannot answer
otherwise, with FastAPI's own scope bookkeeping, so a route reached here sees the request exactly
as through the router.

FastAPI 0.165 routes a request by asking each included router in turn whether one of its routes
matches (a regular expression and a few scope-key swaps per route), and then asks the winning
router again to hand the request over: ``GET /v1/users/{id}/recommendations`` cost six route
matches, three included-router passes and two ``effective_candidates`` version walks, ~4 % of the
event loop's CPU per served list (BENCHMARKS §55). Here each route is indexed by the literal
segments of its path: a request's segments find the few routes of that shape in one look-up,
and the first of them whose own ``matches`` says FULL is handed the request with the scope keys
the router would have set (``router``, ``route``, ``endpoint``, ``path_params``, and FastAPI's
``fastapi`` scope entry: included router, effective route, form limits), by FastAPI's functions.

A route is indexed only when no route before it in the router's order could match a request it
matches (one with a compatible path shape, a mount or a parameter whose convertor may take a
``/`` taking every path under its prefix, and a shared method; one of a kind the index does not
know, or whose class decides its own ``matches``, counts as compatible; a websocket route takes
no HTTP request), since the scan gives a request to the first route that matches; every other
request, and every request that no indexed route matches in full (a 404, a 405, a redirect, a
low-priority route), goes through the router as before; so do the requests of a route whose
class decides its own ``matches``. The index is rebuilt when the app's router or any router
included in it changes its routes, or the app's route list is replaced or edited in place.
It copies FastAPI's private routing as of one version (``WRITTEN_FOR``): on another, ``install``
logs why and leaves the router's scan.
"""

from __future__ import annotations

import logging
import re
import re._parser as sre
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

import fastapi
from fastapi import FastAPI
from fastapi.middleware.asyncexitstack import AsyncExitStackMiddleware
from fastapi.routing import APIRoute, APIRouter, APIWebSocketRoute
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.routing import (
    PARAM_REGEX,
    BaseRoute,
    Match,
    Mount,
    Route,
    WebSocketRoute,
    get_route_path,
)
from starlette.types import ASGIApp, Receive, Scope, Send

from recsmith.serving.direct_route import lean

try:  # private, as ``direct_route``'s: checked by ``install`` before the lane is put in place
    from fastapi.routing import (
        _FASTAPI_EFFECTIVE_ROUTE_CONTEXT_KEY,
        _FASTAPI_INCLUDED_ROUTER_KEY,
        _apply_router_form_limits,
        _effective_route_context_var,
        _EffectiveRouteContext,
        _get_fastapi_scope,
        _IncludedRouter,
        _update_scope,
    )
    from fastapi.telemetry._api import _route_selected
except ImportError as missing:  # another FastAPI: ``install`` leaves the router's scan alone
    _MISSING_NAME: str | None = str(missing)
else:
    _MISSING_NAME = None

log = logging.getLogger(__name__)

#: The FastAPI the lane copies the routing of (its scope keys and private functions).
WRITTEN_FOR = "0.165."
FASTAPI_VERSION = fastapi.__version__

_VERSION = attrgetter("_routes_version")  # an APIRouter's count of changes to its own routes

#: The ``matches`` the index knows what a route of each class takes by; a subclass with its own
#: decides for itself, so the index cannot tell what it takes.
_KNOWN_MATCHES = (APIRoute.matches, Route.matches, Mount.matches)
_WEBSOCKET_MATCHES = (APIWebSocketRoute.matches, WebSocketRoute.matches)

#: A path's shape: one entry per ``/``-separated segment, the literal text or None for a segment
#: holding a parameter; and whether the path may go on past them (a parameter that can take a
#: ``/``, as ``:path`` does, ends the shape there).
Shape = tuple[tuple[str | None, ...], bool]

#: the scope entry by which ``Shortcut.lane`` hands its look-up on to ``FastLane.__call__``
_LOOKED_UP = "recsmith.fast_lane.looked_up"
_SLASH = ord("/")
_CLASSES_WITHOUT_SLASH = {sre.CATEGORY_DIGIT, sre.CATEGORY_WORD, sre.CATEGORY_SPACE}


def _no_slash(pattern: Any) -> bool:
    """Whether a parsed regular expression can match no text holding a ``/``: each of its
    atoms shown to exclude it (anything not understood here counts as taking it)."""
    for op, arg in pattern:
        if op is sre.LITERAL:
            ok = arg != _SLASH
        elif op is sre.NOT_LITERAL:
            ok = arg == _SLASH
        elif op is sre.IN:
            ok = _set_without_slash(arg)
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
            ok = _no_slash(arg[2])
        elif op is sre.SUBPATTERN:
            ok = _no_slash(arg[3])
        elif op is sre.BRANCH:
            ok = all(_no_slash(branch) for branch in arg[1])
        else:
            ok = op is sre.AT  # an anchor takes no text; ``.``, look-arounds and the rest may
        if not ok:
            return False
    return True


def _set_without_slash(items: list[tuple[Any, Any]]) -> bool:
    """Whether a ``[...]`` set excludes ``/``: a negated set naming it, or a set of literals,
    ranges and classes none of which holds it."""

    def holds_slash(op: Any, arg: Any) -> bool:
        if op is sre.LITERAL:
            return bool(arg == _SLASH)
        if op is sre.RANGE:
            return bool(arg[0] <= _SLASH <= arg[1])
        return not (op is sre.CATEGORY and arg in _CLASSES_WITHOUT_SLASH)  # unknown: may

    if items and items[0][0] is sre.NEGATE:
        return any(op in (sre.LITERAL, sre.RANGE) and holds_slash(op, a) for op, a in items[1:])
    return not any(holds_slash(op, arg) for op, arg in items)


def one_segment(convertor: Any) -> bool:
    """Whether a path convertor's values stay inside one ``/``-separated segment."""
    regex = getattr(convertor, "regex", None)
    if not isinstance(regex, str):
        return False
    try:
        return _no_slash(sre.parse(regex))
    except re.error:
        return False


def shape_of(template: str, convertors: Mapping[str, Any]) -> Shape:
    """The shape of a route's path template (``/v1/users/{user_id:id}/recommendations``) with
    the route's own ``param_convertors``: a parameter whose convertor may take a ``/`` (or one
    not among them) ends the shape, open, at its segment."""
    segments: list[str | None] = []
    for segment in template.split("/"):
        names = PARAM_REGEX.findall(segment)
        if not all(name in convertors and one_segment(convertors[name]) for name, _ in names):
            return tuple(segments), True
        segments.append(None if names else segment)
    return tuple(segments), False


def may_overlap(a: Shape, b: Shape) -> bool:
    """Whether some path could match both shapes (parameters taken to match anything)."""
    (left, left_open), (right, right_open) = a, b
    if len(left) != len(right) and not (
        (left_open and len(right) >= len(left)) or (right_open and len(left) >= len(right))
    ):
        return False
    return all(x is None or y is None or x == y for x, y in zip(left, right, strict=False))


@dataclass(frozen=True)
class _Lane:
    """An indexed route: the included router holding it and its effective context. ``direct``:
    a request it matches in full may go straight to the context's app (``Shortcut``)."""

    included: _IncludedRouter
    context: _EffectiveRouteContext
    direct: bool = False
    #: what ``Shortcut`` hands a direct lane's requests to (``_lean_app``)
    app: ASGIApp | None = None


def _direct(context: _EffectiveRouteContext) -> bool:
    """Whether handing a request this context matches in full to ``context.app`` is what the
    route's ``handle`` would do: FastAPI's own ``handle`` (or one declaring, by
    ``REFUSES_METHODS_ONLY``, that it only refuses methods the match already ruled out), the
    context's app FastAPI's ``request_response`` alone (no body limit of the route or its
    router wrapped around it), and a ``DirectRoute`` that reads no form (``solved_by``), so
    the file stack of FastAPI's ``AsyncExitStackMiddleware`` has nothing to close."""
    return (
        _refuses_methods_only(type(context.original_route))
        and context.max_body_size is None
        and getattr(context.original_route, "reads_no_form", False)
    )


def _lane(included: _IncludedRouter, context: _EffectiveRouteContext) -> _Lane:
    """An indexed route's lane; a direct one with the app its requests are handed to."""
    if not _direct(context):
        return _Lane(included, context)
    return _Lane(included, context, True, _lean_app(context))


def _lean_app(context: _EffectiveRouteContext) -> ASGIApp:
    """``direct_route.lean`` of the handler the route makes for this inclusion, made as
    FastAPI makes the one its ``request_response`` wraps (``from_api_route``: the route's
    ``get_route_handler`` with the context set), subclasses' wrappers (``StrictJSONRoute``'s)
    included; a second handler alike, whose query memo is its own."""
    token = _effective_route_context_var.set(context)
    try:
        return lean(context.original_route.get_route_handler())
    finally:
        _effective_route_context_var.reset(token)


def _refuses_methods_only(route: type) -> bool:
    """Whether every ``handle`` a route class's own chain runs above ``APIRoute``'s is declared
    (``REFUSES_METHODS_ONLY``) by the class defining it: a subclass overriding ``handle``
    inherits no flag, its ``handle`` may do more."""
    for cls in route.__mro__:
        if cls is APIRoute:
            return True
        if "handle" in vars(cls) and not vars(cls).get("REFUSES_METHODS_ONLY", False):
            return False
    return False


@dataclass(frozen=True)
class _Earlier:
    """A route the scan tries before later ones: its shape and methods (None: any, or unknown)."""

    shape: Shape | None
    methods: frozenset[str] | None

    def shadows(self, shape: Shape, methods: frozenset[str]) -> bool:
        if self.shape is None:
            return True
        shared = self.methods is None or bool(self.methods & methods)
        return shared and may_overlap(self.shape, shape)


def _flat(route: BaseRoute | _EffectiveRouteContext) -> Iterator[_Earlier]:
    """What the scan of ``route`` may match, as shapes."""
    if isinstance(route, _IncludedRouter):
        for candidate in route.effective_candidates():
            yield from _flat(candidate)
    elif not _websocket(route):  # which never matches an HTTP request
        yield _earlier(route)


def _websocket(route: BaseRoute | _EffectiveRouteContext) -> bool:
    """A websocket route (included or not) whose class matches as Starlette's: no HTTP."""
    if isinstance(route, _EffectiveRouteContext):
        inner = route.starlette_route
        return inner is not None and _websocket(inner) and _websocket(route.original_route)
    return isinstance(route, WebSocketRoute) and type(route).matches in _WEBSOCKET_MATCHES


def _earlier(route: BaseRoute | _EffectiveRouteContext) -> _Earlier:
    """A route's shape and methods; a kind not known here, or a class deciding its own
    ``matches``, may match anything."""
    if isinstance(route, _EffectiveRouteContext):
        original = route.original_route
        if type(original).matches not in _KNOWN_MATCHES:
            return _Earlier(None, None)
        if isinstance(original, APIRoute):  # its path has the inclusion's prefix
            return _Earlier(shape_of(route.path, route.param_convertors), _methods(route.methods))
        if route.starlette_route is None:  # a frontend route group, say
            return _Earlier(None, None)
        route = route.starlette_route
    if type(route).matches not in _KNOWN_MATCHES:
        return _Earlier(None, None)
    if isinstance(route, Mount):
        return _Earlier((shape_of(route.path, route.param_convertors)[0], True), None)
    if isinstance(route, Route):
        return _Earlier(shape_of(route.path, route.param_convertors), _methods(route.methods))
    return _Earlier(None, None)


def _methods(methods: set[str] | None) -> frozenset[str] | None:
    return frozenset(methods) if methods else None  # none declared: every method


def _routers(route: BaseRoute) -> Iterator[APIRouter]:
    """The routers whose route lists a scan through ``route`` reads."""
    if isinstance(route, _IncludedRouter):
        yield route.original_router
        for candidate in route.original_router.routes:
            yield from _routers(candidate)


class _Index:
    """The lanes by shape, and the route lists they were worked out from."""

    def __init__(self, router: APIRouter) -> None:
        # what the index is worked out from, read first: a change made while it is built shows
        routes = router.routes
        self.top, self.top_ids = routes, tuple(map(id, routes))
        self.routers = (router, *(r for top in routes for r in _routers(top)))
        self.versions = tuple(map(_VERSION, self.routers))
        # per segment count: (positions of literal segments, {their texts: lanes in order})
        self.by_count: dict[int, list[tuple[tuple[int, ...], dict[tuple[str, ...], list[_Lane]]]]]
        self.by_count = {}
        earlier: list[_Earlier] = []
        for top in routes:
            if isinstance(top, _IncludedRouter):
                for candidate in top.effective_candidates():
                    if (
                        isinstance(candidate, _EffectiveRouteContext)
                        and isinstance(candidate.original_route, APIRoute)
                        # a route deciding its own matches is asked by the scan only
                        and type(candidate.original_route).matches is APIRoute.matches
                    ):
                        self._add(_lane(top, candidate), earlier)
                    earlier.extend(_flat(candidate))
            else:
                earlier.extend(_flat(top))

    def _add(self, lane: _Lane, earlier: list[_Earlier]) -> None:
        shape = shape_of(lane.context.path, lane.context.param_convertors)
        methods = frozenset(lane.context.methods or ())
        if shape[1] or not methods or any(e.shadows(shape, methods) for e in earlier):
            return  # the scan might give its requests to an earlier route: left to the scan
        segments = shape[0]
        literal = tuple(i for i, s in enumerate(segments) if s is not None)
        key = tuple(s for s in segments if s is not None)
        groups = self.by_count.setdefault(len(segments), [])
        for positions, lanes in groups:
            if positions == literal:
                lanes.setdefault(key, []).append(lane)
                return
        groups.append((literal, {key: [lane]}))

    def current(self) -> bool:
        """Whether no route list read changed: the routers' own counts of changes, and the app's
        list itself (replaced, or edited in place as ``routes.insert`` does, uncounted)."""
        routes = self.routers[0].routes
        return (
            routes is self.top
            and tuple(map(id, routes)) == self.top_ids
            and tuple(map(_VERSION, self.routers)) == self.versions
        )

    def lanes(self, path: str) -> Iterator[list[_Lane]]:
        """The indexed routes a path's literal segments name, a group at a time."""
        segments = path.split("/")
        for positions, lanes in self.by_count.get(len(segments), ()):
            found = lanes.get(tuple([segments[i] for i in positions]))
            if found is not None:
                yield found


class FastLane:
    """The app router's entry: an indexed route matching in full is handed the request as the
    router hands it (module docstring); anything else goes to the router."""

    def __init__(self, router: APIRouter, app: ASGIApp) -> None:
        self.router, self.app = router, app
        self.index = _Index(router)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        noted = scope.pop(_LOOKED_UP, None)  # ``Shortcut.lane``'s look-up, where it made one
        found = noted[1] if noted is not None and noted[0] is self else self.found(scope)
        if found is None:
            await self.app(scope, receive, send)
        else:
            await self.hand_over(*found, scope, receive, send)

    def found(self, scope: Scope) -> tuple[_Lane, Scope] | None:
        """The indexed route an HTTP request matches in full, and the scope keys its match
        sets; None: the router's scan answers it."""
        if scope["type"] != "http":
            return None
        if not self.index.current():
            self.index = _Index(self.router)
        # at most one indexed route matches a request in full (two that could would
        # overlap, and the later one is not indexed), so the first found is the scan's
        for lanes in self.index.lanes(get_route_path(scope)):
            for lane in lanes:
                match, child_scope = lane.context.matches(scope)
                if match is Match.FULL:
                    return lane, child_scope
        return None

    async def hand_over(
        self, lane: _Lane, child_scope: Scope, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """The route's ``handle`` answers, with the scope the router gives it (``selected``)."""
        self.selected(lane, child_scope, scope)
        await lane.context.original_route.handle(scope, receive, send)

    def selected(self, lane: _Lane, child_scope: Scope, scope: Scope) -> None:
        """What ``APIRouter.app``, ``_IncludedRouter.handle`` and ``_handle_selected`` do to the
        scope for a route of a router included in the app, in their order, before the route's
        ``handle``."""
        router, included, context = self.router, lane.included, lane.context
        route = context.original_route
        _apply_router_form_limits(scope, router.form_limits)
        if "router" not in scope:
            scope["router"] = router
        _apply_router_form_limits(scope, included.include_context.form_limits)
        fastapi_scope = _get_fastapi_scope(scope)
        fastapi_scope[_FASTAPI_INCLUDED_ROUTER_KEY] = included
        child_scope["route"] = route  # as ``APIRoute.matches`` adds it
        _update_scope(scope, child_scope)
        _route_selected(
            scope=scope,
            path=getattr(context.starlette_route, "path_format", None) or context.path_format,
        )
        fastapi_scope[_FASTAPI_EFFECTIVE_ROUTE_CONTEXT_KEY] = context
        scope["route"] = route


class Shortcut:
    """``Edge``'s way past the layers between it and a route the lane hands requests to
    directly (``_Lane.direct``): FastAPI's ``ExceptionMiddleware`` (whose handlers the route's
    own ``request_response`` applies again, from the scope entry set here: an exception none
    handles goes on to ``Edge`` as before), ``AsyncExitStackMiddleware`` (a stack for the
    files of forms, which these routes do not read), the router and the lane's own frame, and
    the route's ``handle``: ~12 coroutine frames a request walks in, and again each time it
    waits on a gathered read or the coalescer and resumes (BENCHMARKS §111). Any other request
    goes the whole way."""

    def __init__(self, handlers: tuple[Any, Any], router: APIRouter) -> None:
        self.handlers, self.router = handlers, router

    def lane(self, scope: Scope) -> tuple[_Lane, Scope] | None:
        """The direct lane an HTTP request matches in full; None: the layers answer it.

        A look-up that found no direct lane is left in the scope for the lane behind the
        layers (``FastLane.__call__``), which would otherwise make it again (~11 µs for every
        request off the read routes: POST /v1/events, /health). One that raised (a path
        convertor refusing a segment by an ``HTTPException``, say) is not: the lane makes it
        again behind ``ExceptionMiddleware``, whose handlers answer it as the app would."""
        lane = self.router.middleware_stack
        if not isinstance(lane, FastLane):
            return None
        try:
            found = lane.found(scope)
        except Exception:
            return None
        if found is not None and found[0].direct:
            return found
        scope[_LOOKED_UP] = (lane, found)
        return None

    def app_for(self, found: tuple[_Lane, Scope], scope: Scope) -> ASGIApp:
        """The app of ``found``'s route (``_Lane.app``: its lean app), the scope given what the
        skipped layers give it. Handed back for ``Edge`` to call, not called here: a frame
        less that a request walks each time it resumes."""
        scope["starlette.exception_handlers"] = self.handlers
        lane: FastLane = self.router.middleware_stack
        lane.selected(*found, scope)
        return found[0].app or found[0].context.app


def shortcut(app: ASGIApp) -> Shortcut | None:
    """The ``Shortcut`` past ``app`` where it is FastAPI's ``ExceptionMiddleware`` over its
    ``AsyncExitStackMiddleware`` over an app router the lane may front (the stack FastAPI
    builds inside the app's own middleware, as written for ``WRITTEN_FOR``); else None."""
    if _MISSING_NAME is not None or not FASTAPI_VERSION.startswith(WRITTEN_FOR):
        return None
    if type(app) is not ExceptionMiddleware or type(app.app) is not AsyncExitStackMiddleware:
        return None
    router = app.app.app
    handlers = getattr(app, "_exception_handlers", None), getattr(app, "_status_handlers", None)
    if not isinstance(router, APIRouter) or not all(isinstance(h, dict) for h in handlers):
        return None
    return Shortcut(handlers, router)


def unsupported(app: FastAPI) -> str | None:
    """Why the lane cannot copy this FastAPI's routing (None: it can): the lane repeats what
    FastAPI's router does to a request with FastAPI's private names, as written for one
    version; another may route differently, so its scan is left to answer."""
    if not FASTAPI_VERSION.startswith(WRITTEN_FOR):
        return f"FastAPI {FASTAPI_VERSION}, the lane is written for {WRITTEN_FOR}x"
    if _MISSING_NAME is not None:
        return _MISSING_NAME
    if not isinstance(getattr(app.router, "_routes_version", None), int):
        return "APIRouter has no _routes_version"
    return None


def install(app: FastAPI) -> None:
    """Put ``FastLane`` in front of the app's router (after every ``include_router``), where
    this FastAPI is the one it copies; otherwise log why and leave the router's scan."""
    router = app.router
    if router.middleware_stack != router.app:  # a router-level middleware would be skipped
        raise TypeError("FastLane expects the app router without middleware of its own")
    reason = unsupported(app)
    if reason is not None:
        log.warning("fast lane off, routing by FastAPI's scan: %s", reason)
        return
    router.middleware_stack = FastLane(router, router.app)
