"""The HTTP API: ``create_app(settings)`` builds a FastAPI app, ``run(settings)`` serves it."""

from recsmith.governance.keys import create_api_key
from recsmith.serving.app import create_app, run

__all__ = ["create_api_key", "create_app", "run"]
