"""pydantic's error messages reworded where they describe pydantic rather than the input.

"Unable to extract tag using discriminator 'type'" and "String should match pattern '^(\\d{1,6}…'"
tell a client nothing it can act on. The HTTP 422s (``serving.input_errors``) and the rule
parsers (``rerank.rules``, ``merchandising.document``) all word their reasons here, so a reason
reads the same wherever the input came from: the field named, and what is accepted. A key a
file does not know (pydantic's "Extra inputs are not permitted") is said as ``unknown key (did
you mean url?)`` or with the valid keys, for ``recsmith.toml`` and pipeline files alike.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel

from recsmith.decisions.timespec import PATTERN as TIME_PATTERN
from recsmith.ids import UUID4_HEX_PATTERN

#: An item grouping as ``evaluation.grouping.parse_group_spec`` reads it (here, not there: this
#: module is imported by ``config``, which that one's imports need).
ITEM_GROUPS_PATTERN = r"^(category|property:\S.*)$"
#: Free text the server keeps (a key's name, a placement, a page view): no control characters,
#: the id rule's (``recsmith.ids``) C0 and C1 sets.
PRINTABLE_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]+$"
#: A placement's name, as a pipeline file's ``[placements.NAME]``, a rule file and a request's
#: ``?placement=`` all hold it (an experiment's ``--placement`` is narrower: it starts with a
#: letter or digit), so a request cannot name a placement no configuration could hold.
PLACEMENT_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
#: An API key's lifetime from now over HTTP, at most 99999 weeks (a date the calendar holds).
KEY_EXPIRES_PATTERN = r"^[1-9]\d{0,4}[smhdw]$"
#: What a value matching a published ``pattern`` is, in words (patterns not listed keep
#: pydantic's message).
PATTERN_MEANINGS: dict[str, str] = {
    TIME_PATTERN: "a span such as 7d, 12h, or an ISO date",
    PRINTABLE_PATTERN: "text without control characters",
    PLACEMENT_PATTERN: "a placement name: 1 to 64 letters, digits, '.', '_' or '-'",
    KEY_EXPIRES_PATTERN: "a span from now: 1 to 99999 of s, m, h, d or w, e.g. 90d",
    UUID4_HEX_PATTERN: "a recommendation_id as a response gives it (32 lowercase hex digits)",
    ITEM_GROUPS_PATTERN: "category or property:NAME (a catalogue property, e.g. property:brand)",
}


def unprintable(text: str) -> str | None:
    """Why ``text`` breaks ``PRINTABLE_PATTERN``, in the words an HTTP 422 uses, or None: for
    callers past the HTTP schema (the CLI's ``keys create --name``), so both refuse one set."""
    if re.fullmatch(PRINTABLE_PATTERN, text) is None:
        return f"{text!r} is not {PATTERN_MEANINGS[PRINTABLE_PATTERN]}"
    return None


Loc = tuple[int | str, ...]

#: A missing field's reason (pydantic says "Field required"), for records, events and bodies.
REQUIRED = "required"


def reworded(err: Mapping[str, Any], tags: Sequence[str] = ()) -> tuple[Loc, str]:
    """One pydantic error dict as (where, reason); a missing field is ``required``, wherever it
    was missing (a body, a rule, a pipeline file). A tagged union's missing or unknown tag is
    the tag field's error (``loc`` extended by it) listing the accepted values: ``tags`` gives
    them where pydantic does not (a missing tag); a pattern mismatch says what is accepted."""
    loc: Loc = tuple(err.get("loc", ()))
    kind = err.get("type")
    ctx = err.get("ctx") or {}
    msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    if kind in ("union_tag_not_found", "union_tag_invalid"):
        field = str(ctx.get("discriminator", "")).strip("'")
        if not field.isidentifier():  # a callable discriminator: no field to name
            return loc, msg
        allowed = ", ".join(tags) or str(ctx.get("expected_tags", "")).replace("'", "")
        if kind == "union_tag_not_found":
            return (*loc, field), f"required, one of {allowed}" if allowed else "required"
        tag = repr(ctx.get("tag"))
        return (*loc, field), f"{tag} is not one of {allowed}" if allowed else f"{tag} is unknown"
    if kind == "missing":
        return loc, REQUIRED
    if kind == "string_pattern_mismatch" and ctx.get("pattern") in PATTERN_MEANINGS:
        return loc, f"{err.get('input')!r} is not {PATTERN_MEANINGS[ctx['pattern']]}"
    return loc, msg


def nearest(word: str, choices: Iterable[str]) -> str | None:
    """The choice most like ``word`` (a likely typo of it), if any is close."""
    found = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return found[0] if found else None


def _one_model(annotation: Any) -> Any:
    """``annotation`` without ``Annotated`` and ``| None`` (a union of one model and None is
    that model; a union of several stays one)."""
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        kept = tuple(a for a in typing.get_args(annotation) if a is not type(None))
        return kept[0] if len(kept) == 1 else annotation
    return annotation


def _is_model(at: Any) -> bool:
    return isinstance(at, type) and issubclass(at, BaseModel)


def _tagged(union: Any, tag: int | str) -> Any:
    """The member of a tagged union of models whose tag (a ``Literal`` field) is ``tag``:
    pydantic names the tag in an error's ``loc`` after the list index (``rules.0.pin.item``)."""
    for member in typing.get_args(union):
        for field in member.model_fields.values() if _is_model(member) else ():
            if typing.get_origin(field.annotation) is Literal and tag in typing.get_args(
                field.annotation
            ):
                return member
    return None


def keys_beside(model: Any, loc: Loc) -> list[str]:
    """The valid keys (a field's alias where it has one) where ``loc``'s last part was found,
    walking ``model``'s fields (a list's or tuple's index or a dict's key steps into its
    element, a tagged union's tag into that member); [] where ``loc`` leaves models (a free-form
    table such as a source's ``params``). ``model``: a model, or a list of them (live rules)."""
    at: Any = model
    for part in loc[:-1]:
        if _is_model(at):
            field = _named(at).get(str(part))
            at = _one_model(field.annotation) if field is not None else None
        elif typing.get_origin(at) in (list, dict):
            at = _one_model(typing.get_args(at)[-1])  # the element this index or key names
        elif typing.get_origin(at) is tuple:  # ``tuple[X, ...]``: its element is the first
            at = _one_model(typing.get_args(at)[0])
        elif typing.get_origin(at) in (typing.Union, types.UnionType):
            at = _tagged(at, part)
        else:
            return []
    return list(_named(at)) if _is_model(at) else []


def _named(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s fields by the key a file writes (a filter rule's ``in``, not ``in_``)."""
    return {f.alias or name: f for name, f in model.model_fields.items()}


def unknown_key(
    model: Any,
    loc: Loc,
    spell: Mapping[str, str] | None = None,
    top: str = "section",
    nested: str = "key",
) -> str:
    """``unknown key (did you mean url?)``, or the valid keys when none is close. ``spell`` maps
    a key to how it is written where it was found (an environment variable's name); ``top``
    names what ``model``'s own fields are (a file's sections, a model's parameters), ``nested``
    what the fields of the models inside it are."""
    what = top if len(loc) == 1 else nested
    return unknown_among(str(loc[-1]), keys_beside(model, loc), what, spell)


def unknown_among(
    key: str, keys: Sequence[str], what: str = "field", spell: Mapping[str, str] | None = None
) -> str:
    """``unknown {what} (did you mean url?)`` for ``key`` among the valid ``keys``, or those keys
    when none is close (``spell`` as for ``unknown_key``)."""
    near = nearest(key, keys)
    if near is not None:
        return f"unknown {what} (did you mean {(spell or {}).get(near, near)}?)"
    return f"unknown {what} (valid: {', '.join(keys)})" if keys else f"unknown {what}"


def unknown_field(model: Any, loc: Loc) -> str:
    """A JSON record's or body's unknown key, worded as an event's (``unknown field``) with the
    nearest known field: ``unknown field (did you mean title?)``."""
    return unknown_key(model, loc, top="field", nested="field")
