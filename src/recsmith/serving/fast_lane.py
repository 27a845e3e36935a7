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
matches (one with a compatible path shape, a mount taking every path under its prefix, and a
shared method; one of a kind the index does not know counts as compatible), since the scan gives
a request to the first route that matches; every other request, and every request that no
indexed route matches in full (a 404, a 405, a redirect, a low-priority route), goes through the
router as before; so do the requests of a route whose class decides its own ``matches``. The
index is rebuilt when the app's router or any router included in it changes its routes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from operator import attrgetter

from fastapi import FastAPI
from fastapi.routing import (  # private, as ``direct_route``'s: constraints.txt pins fastapi
    _FASTAPI_EFFECTIVE_ROUTE_CONTEXT_KEY,
    _FASTAPI_INCLUDED_ROUTER_KEY,
    APIRoute,
    APIRouter,
    _apply_router_form_limits,
    _EffectiveRouteContext,
    _get_fastapi_scope,
    _IncludedRouter,
    _update_scope,
)
from fastapi.telemetry._api import _route_selected
from starlette.routing import BaseRoute, Match, Mount, Route, WebSocketRoute, get_route_path
from starlette.types import ASGIApp, Receive, Scope, Send

_VERSION = attrgetter("_routes_version")  # an APIRouter's count of changes to its own routes

#: A path's shape: one entry per ``/``-separated segment, the literal text or None for a segment
#: holding a parameter; and whether its last parameter takes the rest of the path (``:path``).
Shape = tuple[tuple[str | None, ...], bool]


def shape_of(template: str) -> Shape:
    """The shape of a route's path template (``/v1/users/{user_id:id}/recommendations``)."""
    segments: list[str | None] = []
    for segment in template.split("/"):
        if ":path}" in segment:
            return tuple(segments), True
        segments.append(None if "{" in segment else segment)
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
    """An indexed route: the included router holding it and its effective context."""

    included: _IncludedRouter
    context: _EffectiveRouteContext


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
    elif not isinstance(route, WebSocketRoute):  # which never matches an HTTP request
        yield _earlier(route)


def _earlier(route: BaseRoute | _EffectiveRouteContext) -> _Earlier:
    """A route's shape and methods; a kind not known here may match anything."""
    if isinstance(route, _EffectiveRouteContext):
        if isinstance(route.original_route, APIRoute):  # its path has the inclusion's prefix
            return _Earlier(shape_of(route.path), _methods(route.methods))
        if route.starlette_route is None:  # a frontend route group, say
            return _Earlier(None, None)
        route = route.starlette_route
    if isinstance(route, Mount):
        return _Earlier((shape_of(route.path)[0], True), None)
    if isinstance(route, Route):
        return _Earlier(shape_of(route.path), _methods(route.methods))
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
        routers = [router]
        # per segment count: (positions of literal segments, {their texts: lanes in order})
        self.by_count: dict[int, list[tuple[tuple[int, ...], dict[tuple[str, ...], list[_Lane]]]]]
        self.by_count = {}
        earlier: list[_Earlier] = []
        for top in router.routes:
            if isinstance(top, _IncludedRouter):
                routers.extend(_routers(top))
                for candidate in top.effective_candidates():
                    if (
                        isinstance(candidate, _EffectiveRouteContext)
                        and isinstance(candidate.original_route, APIRoute)
                        # a route deciding its own matches is asked by the scan only
                        and type(candidate.original_route).matches is APIRoute.matches
                    ):
                        self._add(_Lane(top, candidate), earlier)
                    earlier.extend(_flat(candidate))
            else:
                earlier.extend(_flat(top))
        self.routers = tuple(routers)
        self.versions = tuple(map(_VERSION, routers))

    def _add(self, lane: _Lane, earlier: list[_Earlier]) -> None:
        shape = shape_of(lane.context.path)
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
        return tuple(map(_VERSION, self.routers)) == self.versions

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
        if scope["type"] == "http":
            if not self.index.current():
                self.index = _Index(self.router)
            # at most one indexed route matches a request in full (two that could would
            # overlap, and the later one is not indexed), so the first found is the scan's
            for lanes in self.index.lanes(get_route_path(scope)):
                for lane in lanes:
                    match, child_scope = lane.context.matches(scope)
                    if match is Match.FULL:
                        await self._hand_over(lane, child_scope, scope, receive, send)
                        return
        await self.app(scope, receive, send)

    async def _hand_over(
        self, lane: _Lane, child_scope: Scope, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """What ``APIRouter.app``, ``_IncludedRouter.handle`` and ``_handle_selected`` do to the
        scope for a route of a router included in the app, in their order."""
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
        await route.handle(scope, receive, send)


def install(app: FastAPI) -> None:
    """Put ``FastLane`` in front of the app's router (after every ``include_router``)."""
    router = app.router
    if router.middleware_stack != router.app:  # a router-level middleware would be skipped
        raise TypeError("FastLane expects the app router without middleware of its own")
    router.middleware_stack = FastLane(router, router.app)
