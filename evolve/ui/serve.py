"""Serve the web UI with uvicorn: the one place that binds a socket and picks the token."""

from __future__ import annotations

import socket
from collections.abc import Callable

import uvicorn

from evolve.errors import UserError
from evolve.ui.app import build_app
from evolve.ui.catalog import RunCatalog
from evolve.ui.security import is_loopback, new_token


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: any free one); a clear error when taken."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        raise UserError(f"--host/--port: cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def serve(catalog: RunCatalog, *, host: str, port: int, announce: Callable[[str], None]) -> None:
    """Serve until interrupted. A bind beyond loopback gets a fresh token, announced once in the
    URL (``announce`` gets the line to show the user)."""
    token = None if is_loopback(host) else new_token()
    sock = bind(host, port)
    app = build_app(catalog, token=token)
    config = uvicorn.Config(
        app, log_level="warning", timeout_graceful_shutdown=1, access_log=False, lifespan="on",
    )
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{bound}/" + (f"?token={token}" if token else "")
    announce(f"evolve ui: serving {url} (Ctrl-C to stop)")
    uvicorn.Server(config).run(sockets=[sock])
