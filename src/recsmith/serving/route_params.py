"""A route's path and query parameters, read from a request as FastAPI reads them, without its
per-request dependency solve.

FastAPI's ``request_params_to_args`` asks, for every declared parameter on every request,
whether it is a parameter model, a sequence or a JSON field, what its aliases are, and deep-copies
the default of each one not sent: for the recommendation route's twelve parameters that was most
of ``solve_dependencies``' ~10 % of a serving worker (BENCHMARKS §38). Those answers never change
for a route, so ``RouteParams`` works them out once, from the route's own ``Dependant``, and per
request looks up each name and validates only the values sent, with the parameter's own pydantic
validator (``ModelField.validate``) at the location FastAPI gives it (``("query", "k")``). The
values, defaults and errors are FastAPI's by construction, and they are raised as FastAPI raises
them (``RequestValidationError``, all of a request's at once, path before query, in declaration
order), so ``input_errors`` answers the same 422.

Only what that needs is supported: scalar path and query parameters with immutable defaults. A
route declaring anything else of its own (a sequence, a JSON field, a parameter model, a header,
cookie or body parameter) is refused when the route is built, not answered differently.
"""

from __future__ import annotations

from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import (  # private helpers: pyproject's fastapi>=0.165 has them
    _get_param_model,
    _is_json_field,
    field_annotation_is_sequence,
    get_missing_field_error,
)
from fastapi.exceptions import RequestValidationError
from starlette.requests import Request

#: Defaults handed out as they are: FastAPI deep-copies a default per request, which for these
#: types is the same object.
_IMMUTABLE = (type(None), bool, int, float, str)


class RouteParams:
    """How to read one route's own path and query parameters (module docstring)."""

    def __init__(self, dependant: Dependant) -> None:
        if dependant.header_params or dependant.cookie_params or dependant.body_params:
            raise TypeError(f"{dependant.path}: RouteParams reads path and query parameters only")
        #: (where, alias, name, field, required, default), path parameters first as FastAPI's
        self._fields: list[tuple[str, str, str, Any, bool, Any]] = []
        for where, fields in (("path", dependant.path_params), ("query", dependant.query_params)):
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
                self._fields.append((where, field.alias, field.name, field, required, default))

    def read(self, request: Request) -> dict[str, Any]:
        """The parameters by name; ``RequestValidationError`` with every error when any is
        invalid or a required one is missing."""
        values: dict[str, Any] = {}
        errors: list[Any] = []
        sent = {"path": request.path_params, "query": request.query_params}
        for where, alias, name, field, required, default in self._fields:
            text = sent[where].get(alias)
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
        if errors:
            raise RequestValidationError(errors)
        return values
