"""Slow clients are cut: uvicorn's HTTP protocol with a deadline for a request's head and one
for its body (uvicorn has neither: a connection that trickles its headers, or sends nothing at
all, stays open for ever, and so does one that trickles its body).

- The head (request line and headers) must be complete ``client_header_timeout_seconds`` after
  the connection opened, or after the first byte of a kept-alive connection's next request.
- The body must be complete ``client_body_timeout_seconds`` after the head.

Past a deadline the client gets ``408 Request Timeout`` (when nothing else was answered on the
connection yet) and the connection is closed; the app, if it was reading the body, sees the
client leave. The time an app takes to answer is not limited here.

``codeshelf serve`` runs uvicorn with ``http="codeshelf.api.edge:DeadlineProtocol"``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from codeshelf.kit.problem_types import BASE_URI as PROBLEM_BASE
from codeshelf.kit.settings import get_settings

_TIMEOUT_BODY = json.dumps(
    {
        "type": PROBLEM_BASE + "request-timeout",
        "title": "Request timeout",
        "status": 408,
        "detail": "the request's headers or body did not arrive in time",
    }
).encode()
# Written by the protocol itself, before any app has the request: a problem document too.
REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"content-type: application/problem+json\r\n"
    b"content-length: " + str(len(_TIMEOUT_BODY)).encode() + b"\r\n"
    b"connection: close\r\n"
    b"\r\n" + _TIMEOUT_BODY
)


class DeadlineProtocol(HttpToolsProtocol):
    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        settings = get_settings()
        self.header_timeout = settings.client_header_timeout_seconds
        self.body_timeout = settings.client_body_timeout_seconds
        self._deadline: asyncio.TimerHandle | None = None
        self._reading_body = False

    def _arm(self, seconds: float, *, body: bool) -> None:
        self._disarm()
        self._reading_body = body
        self._deadline = self.loop.call_later(seconds, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_timeout, body=False)  # a connection that sends nothing is cut too

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._deadline is None:  # a kept-alive connection's next request (the first's runs)
            self._arm(self.header_timeout, body=False)

    def on_headers_complete(self) -> None:
        self._arm(self.body_timeout, body=True)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def _too_slow(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if self._reading_body:  # cycle is the request whose body is late
            unanswered = not cycle.response_started and not self.pipeline
        else:  # no cycle yet for the request whose head is late
            unanswered = cycle is None or cycle.response_complete
        if unanswered:
            self.transport.write(REQUEST_TIMEOUT)
        if self._reading_body:
            cycle.disconnected = True  # the app's reads end, its answer is dropped
            cycle.message_event.set()
        self.transport.close()
