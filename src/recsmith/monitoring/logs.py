"""``[serving] log_format = "json"``: one JSON object per log line, with the request id.

For log shippers (Loki, Elasticsearch, CloudWatch) that index fields: a plain-text line has to be
parsed with a pattern that breaks when a message changes. Plain text stays the default, because a
person reads a terminal. Applied through uvicorn's ``log_config`` so the server's own loggers,
every worker process and recsmith's loggers all write the same shape.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from recsmith.monitoring.request_id import current_request_id


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` (None outside a request) to every record it sees."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id()
        return True


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message", "request_id"[, "exception"]}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def json_log_config(level: str) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` (uvicorn's ``log_config``) sending the root logger and
    uvicorn's loggers through ``JsonFormatter`` to stderr at ``level``."""
    handler = {
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
        "formatter": "json",
        "filters": ["request_id"],
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"json": handler},
        "root": {"handlers": ["json"], "level": level.upper()},
        "loggers": {
            name: {"handlers": [], "level": level.upper(), "propagate": True}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
        },
    }
