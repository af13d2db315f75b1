"""The HTTP client deliveries are sent with: it connects only to addresses it has vetted, and
gives each attempt one deadline in all.

Vetted addresses: the connection resolves the endpoint's host once (``resolve``, the system's
resolver unless a caller passes its own), refuses it if any address is inside a special-purpose
range (``urls.vetted``), and connects to those addresses, never to the name: a name that answers
a public address to one lookup and an internal one to the next (DNS rebinding) reaches nothing
it was not vetted for. TLS is still negotiated and verified for the name (SNI and the
certificate's name are the URL's host, as is the Host header): httpcore asks its network
backend for a connection to (host, port) and then starts TLS on it for the name, so only the
backend is ours.

One deadline per attempt: every name lookup, read, write, connect and TLS handshake of a
request waits at most what is left of the deadline set when the request was sent, so a
receiver that trickles a byte every few seconds is cut off when it passes
(``httpx.TimeoutException``), however many reads it spreads its answer over; httpx's own
time-outs are per read. Each thread sends its own requests (the deadline is a context
variable, read by whichever connection the pool gives it).
"""

from __future__ import annotations

import contextvars
import ssl
import threading
import time
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

from codeshelf.webhooks import urls

_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "codeshelf_webhook_deadline", default=None
)


def _within(timeout: float | None, error: type[Exception]) -> float | None:
    """``timeout`` cut to what is left of this thread's attempt; ``error`` once nothing is."""
    deadline = _DEADLINE.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise error("the attempt's deadline passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every wait ends by the current attempt's deadline."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _within(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _within(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        limit = _within(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, limit))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


def _looked_up(resolve: urls.Resolve, host: str, port: int, limit: float | None) -> list[str]:
    """``resolve(host, port)``, waited for no longer than ``limit`` seconds (the attempt's
    time left): the endpoint's name servers are the partner's, and may take their time. A
    lookup still going on then is left to finish in its thread, unheeded (ConnectTimeout)."""
    answer: list[list[str]] = []
    failure: list[BaseException] = []

    def look() -> None:
        try:
            answer.append(resolve(host, port))
        except BaseException as exc:  # handed to the caller
            failure.append(exc)

    lookup = threading.Thread(target=look, name=f"codeshelf-lookup-{host}", daemon=True)
    lookup.start()
    lookup.join(limit)
    if lookup.is_alive():
        raise httpcore.ConnectTimeout(f"looking up {host} took too long")
    if failure:
        raise failure[0]
    return answer[0]


class VettedBackend(httpcore.NetworkBackend):
    """Connections to the vetted addresses of a host, tried in the resolver's order."""

    def __init__(self, *, allow_private: bool, resolve: urls.Resolve) -> None:
        self._allow_private = allow_private
        self._resolve = resolve
        self._sockets = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        limit = _within(timeout, httpcore.ConnectTimeout)
        addresses = urls.vetted(
            host,
            port,
            allow_private=self._allow_private,
            resolve=lambda name, number: _looked_up(self._resolve, name, number, limit),
        )
        failed: Exception = httpcore.ConnectError("could not connect")
        for address in addresses:
            try:  # an address, not a name: nothing is resolved again
                stream = self._sockets.connect_tcp(
                    address,
                    port,
                    _within(timeout, httpcore.ConnectTimeout),
                    local_address,
                    socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failed = exc
                continue
            return _DeadlineStream(stream)
        raise failed

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("webhooks are sent over TCP only")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class DeliveryTransport(httpx.HTTPTransport):
    """httpx's transport on a ``VettedBackend``, each request under a deadline of
    ``deadline`` seconds from when it is sent."""

    def __init__(
        self,
        *,
        allow_private: bool,
        resolve: urls.Resolve,
        deadline: float,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        super().__init__(verify=verify, trust_env=False)
        self.deadline = deadline
        # httpx builds its httpcore pool with no way to name the network backend: the pool it
        # builds by default, on ours (httpx and httpcore are pinned).
        limits = httpx.Limits()
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=VettedBackend(allow_private=allow_private, resolve=resolve),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        # Set, not reset: the answer's body is read after this returns, under the same deadline
        # (the next request of this thread sets its own).
        _DEADLINE.set(time.monotonic() + self.deadline)
        return super().handle_request(request)


def client(
    *,
    allow_private: bool,
    deadline: float,
    resolve: urls.Resolve = urls.system_resolve,
    verify: ssl.SSLContext | bool = True,
) -> httpx.Client:
    """The client every door sends webhooks with: vetted addresses, ``deadline`` seconds per
    attempt in all, no redirects followed, no proxy from the environment (a proxy would connect
    to the name itself)."""
    transport = DeliveryTransport(
        allow_private=allow_private, resolve=resolve, deadline=deadline, verify=verify
    )
    return httpx.Client(
        transport=transport, timeout=deadline, follow_redirects=False, trust_env=False
    )
