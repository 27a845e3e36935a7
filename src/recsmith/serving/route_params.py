"""A route's path, query and body parameters, read from a request as FastAPI reads them, without
its per-request dependency solve.

FastAPI's ``request_params_to_args`` asks, for every declared parameter on every request,
whether it is a parameter model, a sequence or a JSON field, what its aliases are, and deep-copies
the default of each one not sent: for the recommendation route's twelve parameters that was most
of ``solve_dependencies``' ~10 % of a serving worker (BENCHMARKS §38). Those answers never change
for a route, so ``RouteParams`` works them out once, from the route's own ``Dependant``, and per
request looks up each name and validates only the values sent, with the parameter's own pydantic
validator (``ModelField.validate``) at the location FastAPI gives it (``("query", "k")``). The
values, defaults and errors are FastAPI's by construction, and they are raised as FastAPI raises
them (``RequestValidationError``, all of a request's at once, path before query before body, in
declaration order), so ``input_errors`` answers the same 422.

A JSON body (``POST …/recommendations``' rules) is read as FastAPI's handler reads it, before
anything else (``body``: decoded by ``request.json()``, which a ``StrictJSONRoute`` makes strict),
and validated by FastAPI's own ``request_body_to_args`` against the route's body parameters.

Only what that needs is supported: scalar path and query parameters with immutable defaults, and
a JSON body. A route declaring anything else of its own (a sequence, a JSON field, a parameter
model, a header or cookie parameter, a form) is refused when the route is built, not answered
differently.
"""

from __future__ import annotations

import email.message
import json
from collections.abc import Mapping
from typing import Any

from fastapi import params
from fastapi.dependencies.utils import (  # private helpers: pyproject's fastapi>=0.165 has them
    _get_param_model,
    _is_json_field,
    field_annotation_is_sequence,
    get_missing_field_error,
    request_body_to_args,
)
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic_core import PydanticUndefined
from starlette.exceptions import HTTPException
from starlette.requests import Request

#: Defaults handed out as they are: FastAPI deep-copies a default per request, which for these
#: types is the same object.
_IMMUTABLE = (type(None), bool, int, float, str)


class RouteParams:
    """How to read one route's own parameters (module docstring); ``route`` as the app that
    includes it sees it (its ``strict_content_type``)."""

    def __init__(self, route: APIRoute) -> None:
        dependant = route.dependant
        if dependant.header_params or dependant.cookie_params:
            raise TypeError(f"{dependant.path}: RouteParams reads path, query and body only")
        if route.body_field is not None and isinstance(route.body_field.field_info, params.Form):
            raise TypeError(f"{dependant.path}: RouteParams reads a JSON body, not a form")
        #: (alias, name, field, required, default) of the path and of the query parameters
        self._path: list[tuple[str, str, Any, bool, Any]] = []
        self._query: list[tuple[str, str, Any, bool, Any]] = []
        declared = ((dependant.path_params, self._path), (dependant.query_params, self._query))
        for fields, read in declared:
            for field in fields:
                info = field.field_info
                required = info.is_required()
                default = None if required else field.default
                if (
                    _get_param_model(field) is not None
                    or _is_json_field(field)
                    or field_annotation_is_sequence(info.annotation)
                    or info.validate_default
                    or info.validation_alias is not None  # FastAPI would read the request by it
                    or not isinstance(default, _IMMUTABLE)
                ):
                    raise TypeError(
                        f"{dependant.path}: parameter {field.name!r} is not a plain scalar with "
                        "an immutable default: RouteParams cannot read it as FastAPI would"
                    )
                read.append((field.alias, field.name, field, required, default))
        self._body_fields = dependant.body_params
        self._embed = route._embed_body_fields
        strict = route.strict_content_type
        #: whether a body sent without a Content-Type is JSON (the app's ``strict_content_type``)
        self._untyped_json = not (strict.value if hasattr(strict, "value") else strict)

    async def body(self, request: Request) -> Any:
        """The body as FastAPI's handler reads it, before it solves anything: ``PydanticUndefined``
        when the route takes none or none was sent; decoded by ``request.json()`` when it is
        JSON (``application/json``, ``…+json``, or untyped where the app reads that as JSON), its
        bytes otherwise. A body that does not decode is FastAPI's 422 (``json_invalid``) or
        whatever ``request.json()`` raises as an ``HTTPException``; another failure its 400."""
        if not self._body_fields:
            return PydanticUndefined
        try:
            sent = await request.body()
            if not sent:
                return PydanticUndefined
            media = request.headers.get("content-type")
            if not (self._untyped_json if media is None else _json(media)):
                return sent
            return await request.json()
        except json.JSONDecodeError as exc:
            error = {
                "type": "json_invalid",
                "loc": ("body", exc.pos),
                "msg": "JSON decode error",
                "input": {},
                "ctx": {"error": exc.msg},
            }
            raise RequestValidationError([error], body=exc.doc) from exc
        except HTTPException:
            raise
        except Exception as exc:
            raise HTTPException(400, "There was an error parsing the body") from exc

    def query(self, request: Request) -> Read:
        """The query parameters' values by name, and their errors (in declaration order)."""
        return _values("query", self._query, request.query_params)

    async def read(
        self, request: Request, body: Any = PydanticUndefined, query: Read | None = None
    ) -> dict[str, Any]:
        """The parameters by name, the body's (``body``) too; ``RequestValidationError`` with
        every error when any is invalid or a required one is missing. ``query``: what ``query``
        answers for this request, where the caller has it (``direct_route`` keeps it per query
        string), else read here."""
        values, errors = _values("path", self._path, request.path_params)
        query_values, query_errors = self.query(request) if query is None else query
        values.update(query_values)
        errors = [*errors, *query_errors]
        if self._body_fields:
            read, found = await request_body_to_args(self._body_fields, body, self._embed)
            values.update(read)
            errors.extend(found)
        if errors:
            raise RequestValidationError(errors)
        return values


#: Parameters' values by name, and FastAPI's errors for those that are missing or invalid.
Read = tuple[dict[str, Any], list[Any]]


def _values(
    where: str, fields: list[tuple[str, str, Any, bool, Any]], sent: Mapping[str, str]
) -> Read:
    """``fields`` read from ``sent`` as FastAPI reads them: each parameter's own validator at
    FastAPI's location (``("query", "k")``), the default of one not sent."""
    values: dict[str, Any] = {}
    errors: list[Any] = []
    for alias, name, field, required, default in fields:
        text = sent.get(alias)
        if text is None:
            if required:
                errors.append(get_missing_field_error((where, alias)))
            else:
                values[name] = default
            continue
        value, found = field.validate(text, values, loc=(where, alias))
        if found:
            errors.extend(found)
        else:
            values[name] = value
    return values, errors


def _json(media: str) -> bool:
    """Whether a Content-Type says JSON, decided as FastAPI's handler decides it."""
    message = email.message.Message()
    message["content-type"] = media
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )
