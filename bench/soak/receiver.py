"""The soak's webhook receivers, one process of their own: ``python -m bench.soak.receiver PORT``.

Each endpoint URL names a behaviour and an endpoint: ``POST /<behaviour>/<name>``.

- ``ok``: 204 at once;
- ``flaky``: 204 or 503, at random, half and half;
- ``fail``: 500 with a short body;
- ``hang``: reads the request and never answers (the connection is closed after 60 s);
- ``garbage``: answers bytes that are not HTTP, then closes;
- ``huge``: a 200 whose 64 MiB body is streamed as fast as the client reads it;
- ``bomb``: a 200 with ``Content-Encoding: gzip``: 64 KiB that inflate to 64 MiB of zeros;
- ``trickle``: a 200 whose body comes one byte every 2 seconds, for 60 seconds;
- ``nul``: a 400 whose body holds NUL and other control bytes.

``GET /stats`` answers, per endpoint (``<behaviour>/<name>``), the ``webhook-id`` values it sent
a 2xx status line for (what the worker may record as delivered) and the POSTs it received.
Plain asyncio streams.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import random
import sys
from collections import defaultdict
from functools import partial

BEHAVIOURS = ("ok", "flaky", "fail", "hang", "garbage", "huge", "bomb", "trickle", "nul")
NO_CONTENT = b"HTTP/1.1 204 No Content\r\n\r\n"
UNAVAILABLE = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy"
ERROR = b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 5\r\n\r\noops\n"
NUL_BODY = b"bad\x00request\x01\x1b[31m\x7f\xff\xfe" * 20
NUL = b"HTTP/1.1 400 Bad Request\r\nContent-Length: %d\r\n\r\n" % len(NUL_BODY) + NUL_BODY
HUGE = 64 * 1024 * 1024
BOMB = gzip.compress(b"\0" * HUGE, compresslevel=9)


class Log:
    def __init__(self) -> None:
        self.delivered: dict[str, set[str]] = defaultdict(set)
        self.posts: dict[str, int] = defaultdict(int)

    def stats(self) -> bytes:
        body = json.dumps(
            {
                "delivered": {name: sorted(ids) for name, ids in self.delivered.items()},
                "posts": self.posts,
            }
        ).encode()
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
        return head.encode() + b"\r\n\r\n" + body


async def _answer(
    log: Log, behaviour: str, name: str, webhook_id: str, writer: asyncio.StreamWriter
) -> bool:
    """Answer one POST; False when the connection must be closed afterwards."""
    endpoint = f"{behaviour}/{name}"
    log.posts[endpoint] += 1
    success = behaviour in ("ok", "huge", "bomb", "trickle") or (
        behaviour == "flaky" and random.random() < 0.5
    )
    if success:  # a 2xx status line goes out, whatever follows it
        log.delivered[endpoint].add(webhook_id)
    if behaviour == "ok" or (behaviour == "flaky" and success):
        writer.write(NO_CONTENT)
    elif behaviour == "flaky":
        writer.write(UNAVAILABLE)
    elif behaviour == "fail":
        writer.write(ERROR)
    elif behaviour == "nul":
        writer.write(NUL)
    elif behaviour == "hang":
        await asyncio.sleep(60)
        return False
    elif behaviour == "garbage":
        writer.write(random.randbytes(3000) + b"\r\n\r\n")
        return False
    elif behaviour == "huge":
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % HUGE)
        chunk = b"x" * 65536
        for _ in range(HUGE // len(chunk)):
            writer.write(chunk)
            await writer.drain()
        return False
    elif behaviour == "bomb":
        head = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n"
        writer.write(head % len(BOMB) + BOMB)
    elif behaviour == "trickle":
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 30\r\n\r\n")
        for _ in range(30):
            await writer.drain()
            await asyncio.sleep(2)
            writer.write(b"k")
        return False
    await writer.drain()
    return True


async def _connection(log: Log, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, *fields = head[:-4].decode("latin-1").split("\r\n")
            method, path = request_line.split(" ", 2)[:2]
            headers = {}
            for field in fields:
                key, _, value = field.partition(":")
                headers[key.strip().lower()] = value.strip()
            await reader.readexactly(int(headers.get("content-length", "0")))
            if method == "GET":
                writer.write(log.stats())
                await writer.drain()
                continue
            behaviour, _, name = path.strip("/").partition("/")
            if not await _answer(log, behaviour, name, headers.get("webhook-id", ""), writer):
                break
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
        pass
    finally:
        writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(partial(_connection, Log()), "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
