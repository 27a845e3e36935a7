"""One exception hierarchy, so callers (CLI exit codes, HTTP status codes) can map errors by
kind."""

from __future__ import annotations


class RecsmithError(Exception):
    """Base of every error recsmith raises on purpose."""


class ValidationError(RecsmithError, ValueError):
    """A value at a boundary is wrong: names the field and the reason."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class NotFittedError(RecsmithError, ValueError, AttributeError):
    """A model was asked to predict before `fit` (sklearn's convention: both ValueError and
    AttributeError)."""


class UnknownModelError(RecsmithError, KeyError):
    """No model is registered under that name."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0]) if self.args else "unknown model"


class StoreUnavailable(RecsmithError):
    """The event store cannot do its work right now (unreachable, connection lost, disk full,
    read-only, locked past its timeout): an outage to wait out, not a bug to report. The server
    answers 503 with ``cause`` (the backend's own words) and ``Retry-After``."""

    def __init__(self, message: str, cause: str | None = None) -> None:
        super().__init__(message)
        self.cause = cause or message


class StoreReadOnly(StoreUnavailable):
    """A write on a store open read-only (a copy, a read-only mount, ``?mode=ro``): refused
    like an outage (exit 3, 503), but it is none: the store reads as before and waiting will not
    make it write, so it is neither logged nor counted as the store being down."""


class ArtifactError(RecsmithError):
    """A model or pipeline directory cannot be written, or does not load (a failure: exit 3)."""


class ServerStartError(RecsmithError):
    """The server cannot start: its port is taken, or its workers fail as they start."""


class MissingExtraError(RecsmithError, ImportError):
    """An optional dependency is needed: says which `pip install recsmith[extra]` brings it."""

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(f"{package} is not installed: pip install 'recsmith[{extra}]'")
