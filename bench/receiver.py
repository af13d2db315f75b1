"""The webhook receiver of the benchmark, a process of its own: ``python receiver.py PORT``.

It answers every POST with ``204 No Content`` at once and remembers what came, for the
benchmark to read back as JSON:

- ``GET /stats``: the POSTs received, the distinct ``webhook-id`` values among them, and the
  arrival times of the first and the last;
- ``GET /fulfilled``: the first arrival time of each ``order.fulfilled``, by ``order_id``;
- ``GET /last``: the headers and body of the last POST (to check its signature).

Times are ``time.monotonic()``, i.e. CLOCK_MONOTONIC: one clock for every process of the
machine, so the benchmark can subtract its own readings. Plain asyncio streams and the
standard library only (HTTP/1.1 with keep-alive and Content-Length bodies, which is what httpx
sends), so that it costs little CPU: its CPU time shows whether it was ever the bottleneck.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from functools import partial
from typing import Any

NO_CONTENT = b"HTTP/1.1 204 No Content\r\n\r\n"
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
FULFILLED = b'"event":"order.fulfilled"'  # the worker sends compact JSON


class Log:
    """What the receiver has seen so far."""

    def __init__(self) -> None:
        self.posts = 0
        self.ids: set[str] = set()
        self.first: float | None = None
        self.last: float | None = None
        self.fulfilled: dict[str, float] = {}
        self.latest: tuple[dict[str, str], bytes] = ({}, b"")

    def record(self, headers: dict[str, str], body: bytes) -> None:
        now = time.monotonic()
        self.posts += 1
        self.ids.add(headers.get("webhook-id", ""))
        self.first = now if self.first is None else self.first
        self.last = now
        if FULFILLED in body:  # a retry keeps the first arrival
            self.fulfilled.setdefault(json.loads(body)["order_id"], now)
        self.latest = (headers, body)

    def answer(self, path: str) -> Any:
        if path == "/stats":
            return {
                "posts": self.posts,
                "distinct": len(self.ids),
                "first": self.first,
                "last": self.last,
            }
        if path == "/fulfilled":
            return self.fulfilled
        if path == "/last":
            return {"headers": self.latest[0], "body": self.latest[1].decode()}
        return None


def _json(document: Any) -> bytes:
    if document is None:
        return NOT_FOUND
    body = json.dumps(document).encode()
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
    return head.encode() + b"\r\n\r\n" + body


async def _connection(log: Log, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Requests one after another on one keep-alive connection, until the client closes it."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, *fields = head[:-4].decode("latin-1").split("\r\n")
            method, path = request_line.split(" ", 2)[:2]
            headers = {}
            for field in fields:
                name, _, value = field.partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            if method == "POST":
                log.record(headers, body)
                writer.write(NO_CONTENT)
            else:
                writer.write(_json(log.answer(path)))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass  # the client closed the connection
    finally:
        writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(partial(_connection, Log()), "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
