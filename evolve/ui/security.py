"""Who may talk to the web UI: loopback by default, a token for any other bind.

On a loopback bind, a request must name a loopback host (a page on another site that points a
DNS name at 127.0.0.1 is refused). On any other bind, every request must carry the token: once in
the URL (``?token=``, answered with a cookie and a redirect that drops it from the address bar),
then the cookie or an ``Authorization: Bearer`` header. Every answer forbids framing, sniffing
and referrers, and its scripts may come only from the app itself.
"""

from __future__ import annotations

import ipaddress
import secrets
from urllib.parse import parse_qsl, urlencode

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE = "evolve_ui_token"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        b"img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
    ),
]


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` serves this machine only."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def new_token() -> str:
    return secrets.token_urlsafe(24)


def _host_name(value: str) -> str:
    """The host part of a Host header (``[::1]:8000`` -> ``::1``, ``a:80`` -> ``a``)."""
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class Guard:
    """ASGI middleware: the host check (loopback binds) or the token check (other binds)."""

    def __init__(self, app: ASGIApp, *, token: str | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is not None:
            await _secured(refusal)(scope, receive, send)
            return

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_HEADERS]
            await send(message)

        await self.app(scope, receive, send_secured)

    def _refusal(self, scope: Scope) -> Response | None:
        headers = Headers(scope=scope)
        if self.token is None:
            if _host_name(headers.get("host", "")).lower() not in LOOPBACK_NAMES:
                return PlainTextResponse("evolve ui: this server answers loopback names only\n", 403)
            return None
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        given = query.get("token")
        if given is not None and secrets.compare_digest(given, self.token):
            rest = urlencode({k: v for k, v in query.items() if k != "token"})
            to = scope["path"] + (f"?{rest}" if rest else "")
            answer = RedirectResponse(to, status_code=303)
            answer.set_cookie(COOKIE, self.token, httponly=True, samesite="strict")
            return answer
        cookie = _cookie(headers.get("cookie", ""))
        bearer = headers.get("authorization", "")
        for candidate in (cookie, bearer.removeprefix("Bearer ") if bearer.startswith("Bearer ") else None):
            if candidate is not None and secrets.compare_digest(candidate, self.token):
                return None
        return PlainTextResponse("evolve ui: open the URL with the token that `evolve ui` printed\n", 403)


def _cookie(header: str) -> str | None:
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE:
            return value
    return None


def _secured(response: Response) -> ASGIApp:
    response.raw_headers.extend(_HEADERS)
    return response
