"""What the operator sees of requests: a request id, one log line and two metrics per request.

The request id is the client's ``X-Request-Id`` when it is sane (1 to 128 letters, digits and
``._:-``), else a new one; it is echoed as ``X-Request-Id`` and written on every log line of
the request. The line (``codeshelf.request``, event ``request``) names the route *template*
(``/api/v1/orders/{order_id}``, never the raw path: no ids in metric labels), the status, the
duration, the client's address and, once authenticated, the partner's public id. A request
answered before routing (404 of the hidden operator API, 413, 400 of a doubled header) is
``unmatched``.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from codeshelf.kit.logs import REQUEST_ID, event

log = logging.getLogger("codeshelf.request")
PARTNER = "log_partner"  # key in scope["state"]: the authenticated partner's public id
UNMATCHED = "unmatched"
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

REQUESTS = Counter(
    "codeshelf_http_requests",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "codeshelf_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


def request_id(scope: Scope) -> str:
    """The client's X-Request-Id if it is sane (and sent once), else a new one."""
    sent = [value for name, value in scope.get("headers", []) if name.lower() == b"x-request-id"]
    if len(sent) == 1:
        text: str = sent[0].decode("latin-1")
        if _SANE_ID.fullmatch(text):
            return text
    return uuid.uuid4().hex


def route_template(scope: Scope) -> str:
    """The path template of the route that answered, or ``unmatched``.

    The router names the route (``scope["route"]``), whose path leaves out the prefixes of the
    routers it was included under (``/api/v1``): those are taken from the raw path, as the
    shortest start of it after which the route's pattern matches (prefixes hold no ids).
    """
    route = scope.get("route")
    template = getattr(route, "path", None)
    pattern = getattr(route, "path_regex", None)
    if not isinstance(template, str) or not template or pattern is None:
        return UNMATCHED
    if isinstance(route, Mount):
        template += "/{path}"
    path = str(scope.get("path", ""))
    if pattern.match(path):
        return template
    for at in range(1, len(path)):
        if path[at] == "/" and pattern.match(path[at:]):
            return path[:at] + template
    return UNMATCHED


class ObserveRequests:
    """Outermost middleware: request id, the request's log line and its metrics."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id(scope)
        header = (b"x-request-id", rid.encode())
        token = REQUEST_ID.set(rid)
        status = 500  # unless the app answers: an exception becomes a 500 outside us
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message = {**message, "headers": [*message.get("headers", []), header]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            _record(scope, status, time.perf_counter() - started)
            REQUEST_ID.reset(token)


def _record(scope: Scope, status: int, seconds: float) -> None:
    method, route = str(scope.get("method", "")), route_template(scope)
    REQUESTS.labels(method, route, str(status)).inc()
    LATENCY.labels(method, route).observe(seconds)
    fields: dict[str, Any] = {
        "method": method,
        "route": route,
        "status": status,
        "duration_ms": round(seconds * 1000, 1),
    }
    client = scope.get("client")
    if client:
        fields["client"] = client[0]
    partner = scope.get("state", {}).get(PARTNER)
    if partner is not None:
        fields["partner"] = partner
    event(log, "request", **fields)
