"""Who may read ``/metrics``, ``/docs``, ``/redoc`` and ``/openapi.json``.

``open`` (anyone), ``key`` (any valid API key, whatever its scopes) or ``off`` (404). The default,
``auto``, is ``open`` on a loopback address (a developer's machine) and ``key`` on any other:
a server reachable from a network should not hand out its metrics (request counts per route,
model versions) and a map of its API to whoever asks.
"""

from __future__ import annotations

import ipaddress
from typing import Literal

Exposure = Literal["auto", "open", "key", "off"]


def resolve(setting: Exposure, host: str) -> Literal["open", "key", "off"]:
    """``setting`` with ``auto`` decided by ``host``, the address the server binds."""
    if setting != "auto":
        return setting
    return "open" if is_loopback(host) else "key"


def is_loopback(host: str) -> bool:
    """``localhost``, ``127.x.x.x`` or ``::1``; not ``0.0.0.0`` (every address)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False
