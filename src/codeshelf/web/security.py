"""What every portal page gets: its security headers, the session cookie, and CSRF checks.

- Headers: a Content-Security-Policy with ``script-src 'self'`` and no inline script,
  ``X-Frame-Options: DENY``, ``Referrer-Policy: same-origin``, ``Cache-Control: no-store``.
- The session cookie is ``__Host-codeshelf_session``: ``Secure`` (Chromium takes it over plain
  http on loopback too), ``HttpOnly``, ``SameSite=Lax``, ``Path=/``, no ``Domain``.
- CSRF: every state-changing request carries the session's token (form field ``csrf_token`` or
  header ``X-CSRF-Token``, which htmx sends); forms shown before sign-in carry a token that must
  match the ``__Host-codeshelf_csrf`` cookie (double submit). A POST from another origin is
  refused whatever it carries.
"""

from __future__ import annotations

import secrets
from ipaddress import IPv4Network, IPv6Network, ip_address

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SESSION_COOKIE = "__Host-codeshelf_session"
OPS_SESSION_COOKIE = "__Host-codeshelf_ops_session"  # the console's: never the portal's
PRE_SESSION_COOKIE = "__Host-codeshelf_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
PAGE_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"x-content-type-options", b"nosniff"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


def page_headers(csp: str = CSP) -> list[tuple[bytes, bytes]]:
    """The page headers with ``csp`` as the Content-Security-Policy."""
    return [(b"content-security-policy", csp.encode()), *PAGE_HEADERS[1:]]


class PageHeaders:
    """Security headers (``headers``: the portal's) on every response under ``prefixes``."""

    def __init__(
        self,
        app: ASGIApp,
        prefixes: tuple[str, ...],
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        self.app = app
        self.prefixes = prefixes
        self.headers = PAGE_HEADERS if headers is None else headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith(self.prefixes):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *self.headers]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class OnlyFromNetworks:
    """Paths under ``prefix`` answer 404 to clients outside ``networks`` (none: everyone).

    The client address is the connection's (behind a reverse proxy, the proxy must pass the
    real one and the server trust it: see the README's deployment notes)."""

    def __init__(self, app: ASGIApp, prefix: str) -> None:
        self.app = app
        self.prefix = prefix

    @staticmethod
    def _allowed(scope: Scope) -> bool:
        networks: list[IPv4Network | IPv6Network] = scope[
            "app"
        ].state.services.settings.ops_networks()
        if not networks:
            return True
        client = scope.get("client")
        try:
            address = ip_address(client[0]) if client else None
        except ValueError:
            return False
        return address is not None and any(address in network for network in networks)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        under = path == self.prefix or path.startswith(self.prefix + "/")
        if scope["type"] == "http" and under and not self._allowed(scope):
            await Response("Not Found", status_code=404, media_type="text/plain")(
                scope, receive, send
            )
            return
        await self.app(scope, receive, send)


def set_cookie(response: Response, name: str, value: str, max_age: int | None = None) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path="/", secure=True, httponly=True, samesite="lax"
    )


def clear_cookie(response: Response, name: str) -> None:
    response.delete_cookie(name, path="/", secure=True, httponly=True, samesite="lax")


def new_token() -> str:
    return secrets.token_urlsafe(32)


def same_origin(request: Request) -> bool:
    """A request with an Origin header must come from this very origin (scheme, host, port)."""
    origin = request.headers.get("origin")
    if origin is None:
        return True  # not sent by older browsers on same-origin POSTs; SameSite=Lax covers them
    host = request.headers.get("host", "")
    return origin in {f"http://{host}", f"https://{host}"}


def token_matches(expected: str | None, presented: str | None) -> bool:
    return bool(expected and presented) and secrets.compare_digest(str(expected), str(presented))
