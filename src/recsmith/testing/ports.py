"""A free TCP port for a server a test or benchmark starts (the OS picks it)."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now. Another process may take it before
    the caller binds it; the servers started with it fail loudly if so."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
