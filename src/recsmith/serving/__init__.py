"""The HTTP API: ``create_app(settings)`` builds a FastAPI app, ``run(settings)`` serves it."""

from recsmith.serving.app import create_app, run
from recsmith.serving.auth import create_api_key

__all__ = ["create_api_key", "create_app", "run"]
