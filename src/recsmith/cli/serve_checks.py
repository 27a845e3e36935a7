"""What ``serve`` (and ``quickstart``) check before the server starts, so that a server that
cannot do its job says so in one line instead of starting anyway or dying in a traceback.

- No model: a server without one answered 503 to every recommendation, forever, with nothing at
  start to say why. It is refused unless ``--allow-no-model`` (``serving.allow_no_model``) asks
  for exactly that (collecting events before the first training).
- A taken port: uvicorn logged a bind error and exited; the line here names the port and what
  to do about it.
"""

from __future__ import annotations

import errno

from recsmith.bundle import check_parts, read_manifest
from recsmith.config import ServingSettings
from recsmith.errors import ServerStartError, ValidationError
from recsmith.governance.releases import ModelRegistry
from recsmith.serving.supervisor import listen_socket

#: The setting and the flag that allow a server without a model.
ALLOW_FLAG = "--allow-no-model"


def missing_model(serving: ServingSettings) -> str | None:
    """Why the server would start without a model, or None when it has one to load. A model
    directory that exists but is broken raises here (a ``ValidationError`` naming the file)."""
    if serving.model_dir is not None:
        if not (serving.model_dir / "manifest.json").is_file():
            return f"no model in {serving.model_dir} yet"
        read_manifest(serving.model_dir)
        check_parts(serving.model_dir)
        return None
    if serving.registry is not None:
        if ModelRegistry(serving.registry).current() is None:
            return f"the registry {serving.registry} has no deployed release yet"
        return None
    return "no model directory given (--model-dir, or [serving] model_dir in the config)"


def check_model(serving: ServingSettings) -> str | None:
    """None when there is a model to serve; the warning to print when there is none and the
    settings allow it; a usage error (naming how to get one) otherwise."""
    missing = missing_model(serving)
    if missing is None:
        return None
    if not serving.allow_no_model:
        raise ValidationError(
            "--model-dir",
            f"nothing to serve: {missing}. Train one first (`recsmith train --out model/`, or "
            "`recsmith quickstart`) and serve it with --model-dir model/; to collect events "
            f"before the first training, start with {ALLOW_FLAG}",
        )
    return (
        f"serving WITHOUT a model ({ALLOW_FLAG}): {missing}. Events are stored; recommendation "
        "routes answer 503 and /health/ready reports the model check failed until a model is "
        "trained and the server restarted"
    )


def check_port(host: str, port: int) -> None:
    """Raise ``ServerStartError`` with what to do when ``host:port`` cannot be listened on."""
    try:
        listen_socket(host, port, reuse_port=False).close()
    except ServerStartError as exc:
        code = exc.__cause__.errno if isinstance(exc.__cause__, OSError) else None
        if code == errno.EADDRINUSE:
            hint = (
                "the port is already in use, by another server (another `recsmith serve`?): "
                "stop it, or pick a free port with --port"
            )
        elif code == errno.EACCES:
            hint = "the port needs privileges on this system: pick one above 1023 with --port"
        elif code == errno.EADDRNOTAVAIL:
            hint = "the address is not one of this machine's: pick another with --host"
        else:
            raise
        raise ServerStartError(f"serving.port: cannot listen on {host}:{port}: {hint}") from None
