"""Faults between the client and a real server: an HTTP-aware TCP proxy on loopback that can
throw away a response the server already sent (the work is done, the client never hears of it)
or answer 429 itself, and a server that can be stopped and started again on the same port."""

from __future__ import annotations

import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import uvicorn

from codeshelf.api.app import create_app, services_for
from codeshelf.kit.settings import Settings


def _read_message(sock: socket.socket, buffer: bytearray) -> bytes | None:
    """One HTTP/1.1 message (head and Content-Length body) from ``sock``; None at EOF."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        buffer.extend(chunk)
    head_end = buffer.index(b"\r\n\r\n") + 4
    length = 0
    for line in bytes(buffer[:head_end]).split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(buffer) < head_end + length:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        buffer.extend(chunk)
    message = bytes(buffer[: head_end + length])
    del buffer[: head_end + length]
    return message


def _reset(sock: socket.socket) -> None:
    """Close with a TCP reset: the peer sees the connection torn down, not a clean end."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


@dataclass
class Proxy:
    """Forwards each request to ``upstream`` (host, port) and its response back, unless armed:

    - ``drop_responses_to[prefix] = n``: the next ``n`` requests whose first line starts with
      ``prefix`` reach the server, which answers (its transaction committed); the proxy reads
      that answer and resets the client's connection instead of passing it on;
    - ``storm = (n, retry_after)``: the next ``n`` requests get a 429 from the proxy itself,
      with ``Retry-After: retry_after`` (seconds), or that many seconds from now as an HTTP
      date when ``storm_as_date``.
    """

    upstream: tuple[str, int]
    drop_responses_to: dict[bytes, int] = field(default_factory=dict)
    storm: tuple[int, int] = (0, 0)
    storm_as_date: bool = False
    requests: list[bytes] = field(default_factory=list)  # each request's first line
    dropped: int = 0
    stormed: list[float] = field(default_factory=list)  # when each 429 was sent (monotonic)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> Proxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(self.upstream)
        from_client, from_server = bytearray(), bytearray()
        try:
            while (request := _read_message(client, from_client)) is not None:
                line = request.split(b"\r\n", 1)[0]
                if self._storming(line):
                    client.sendall(self._too_many())
                    continue
                upstream.sendall(request)
                response = _read_message(upstream, from_server)
                if response is None:
                    break
                if self._dropping(line):
                    _reset(client)
                    return
                client.sendall(response)
        except OSError:
            pass
        finally:
            upstream.close()
            client.close()

    def _storming(self, line: bytes) -> bool:
        with self._lock:
            self.requests.append(line)
            count, _ = self.storm
            if count <= 0:
                return False
            self.storm = (count - 1, self.storm[1])
            self.stormed.append(time.monotonic())
            return True

    def _too_many(self) -> bytes:
        body = (
            b'{"type":"https://iana.org/assignments/http-problem-types#quota-exceeded",'
            b'"title":"Too many requests","status":429,"detail":"storm"}'
        )
        return (
            b"HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/problem+json\r\n"
            + f"retry-after: {self._retry_after()}\r\n".encode()
            + f"content-length: {len(body)}\r\n\r\n".encode()
            + body
        )

    def _retry_after(self) -> str:
        if not self.storm_as_date:
            return str(self.storm[1])
        return format_datetime(datetime.now(UTC) + timedelta(seconds=self.storm[1]), usegmt=True)

    def _dropping(self, line: bytes) -> bool:
        with self._lock:
            for prefix, count in self.drop_responses_to.items():
                if line.startswith(prefix) and count > 0:
                    self.drop_responses_to[prefix] = count - 1
                    self.dropped += 1
                    return True
        return False


class RestartableServer:
    """The real app under uvicorn on one loopback port, which can be stopped and started
    again (with new services each time: no connection, rate count or cache survives, only
    the database)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = create_app(settings)
        probe = socket.create_server(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    def start(self) -> None:
        self.app.state.services = services_for(self.settings)
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", lifespan="off"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        self._server, self._thread, self._sock = server, thread, sock

    def stop(self) -> None:
        assert self._server and self._thread and self._sock
        self._server.should_exit = True
        self._thread.join(timeout=20)
        self._sock.close()
        self.app.state.services.db.dispose()

    def start_later(self, seconds: float) -> threading.Thread:
        def later() -> None:
            time.sleep(seconds)
            self.start()

        thread = threading.Thread(target=later)
        thread.start()
        return thread


class CountingTransport(httpx.HTTPTransport):
    """httpx's own transport, counting the requests it sends."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(f"{request.method} {request.url.path}")
        return super().handle_request(request)
