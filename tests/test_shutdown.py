"""SIGTERM stops `codeshelf serve` and `codeshelf worker` gracefully: the requests in flight are
answered in full and the deliveries in flight recorded, the rest of the worker's deliveries go
back to the queue for the next worker, and both exit 0. Real processes, real receivers and raw
client sockets on loopback; what happens when is told by the processes' logs, not by timing."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from codeshelf.kit.db import Database
from codeshelf.webhooks.models import Delivery, Event
from tests.fixtures import factories
from tests.fixtures.adversarial import violations
from tests.fixtures.http import available_codes, order, order_count
from tests.fixtures.processes import codeshelf_process
from tests.fixtures.receiver import Received, Receiver, webhook_ids

pytestmark = pytest.mark.live


def _until(condition: Callable[[], bool], seconds: float = 30) -> bool:
    """Liveness, with a generous deadline: whether ``condition`` came true in time."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _logged(cwd: Path, text: str) -> Callable[[], bool]:
    return lambda: text in (cwd / "codeshelf.log").read_text()


# The worker


def _deliveries(db: Database) -> dict[str, tuple[str, int, bool]]:
    """By event id: each delivery's state, attempts, and whether it is held."""
    with db.read_session() as session:
        rows = session.execute(
            select(Event.public_id, Delivery.state, Delivery.attempts, Delivery.locked_until)
            .join(Event, Event.id == Delivery.event_id)
            .order_by(Delivery.id)
        )
        return {event: (state, n, held is not None) for event, state, n, held in rows}


@pytest.mark.slow  # processes that wait: started first, beside the rest
def test_sigterm_lets_the_worker_finish_its_delivery_in_flight_and_release_the_rest(
    hook_client: httpx.Client, db: Database, shop: factories.Shop, tmp_path: Path
) -> None:
    in_flight, answer_now = threading.Event(), threading.Event()

    def slow_first(_got: Received) -> tuple[int, dict[str, str]]:
        if not in_flight.is_set():
            in_flight.set()
            answer_now.wait(timeout=20)
        return 200, {}

    env = {"CODESHELF_WEBHOOK_ALLOW_PRIVATE": "true", "CODESHELF_WORKER_POLL_SECONDS": "0.1"}
    with Receiver(slow_first) as receiver:
        created = hook_client.post(
            "/api/v1/webhook-endpoints", json={"url": receiver.url}, headers=shop.a.headers
        )
        assert created.status_code == 201, created.text
        order(hook_client, shop.a.headers)  # three events: created, paid, fulfilled
        with codeshelf_process(tmp_path, db.url, "worker", env=env) as worker:
            assert _until(in_flight.is_set)
            worker.send_signal(signal.SIGTERM)
            assert _until(_logged(tmp_path, "stopping:"))  # told, while its attempt is in flight
            answer_now.set()
            assert worker.wait(timeout=60) == 0
        first, *rest = list(_deliveries(db).items())
        assert first[1] == ("succeeded", 1, False)  # finished and recorded
        assert [state for _, state in rest] == [("pending", 0, False)] * 2  # back in the queue
        # The next worker sends the rest; nothing is sent twice.
        handlers = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
        try:
            again = factories.run_cli(db.url, "worker", "--once", env=env)
        finally:
            signal.signal(signal.SIGINT, handlers[0])
            signal.signal(signal.SIGTERM, handlers[1])
        assert again.exit_code == 0, again.stderr
        assert sorted(webhook_ids(receiver)) == sorted(_deliveries(db))
    assert {state for state, _, _ in _deliveries(db).values()} == {"succeeded"}
    assert "Traceback" not in (tmp_path / "codeshelf.log").read_text()


# The server


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _order_head(port: int, headers: dict[str, str], length: int) -> bytes:
    lines = [
        "POST /api/v1/orders HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        *(f"{name}: {value}" for name, value in headers.items()),
        f"Idempotency-Key: {uuid.uuid4()}",
        "Content-Type: application/json",
        f"Content-Length: {length}",
        "Expect: 100-continue",  # the server answers 100 once the app reads the body
        "Connection: close",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _started_order(port: int, headers: dict[str, str], body: bytes) -> socket.socket:
    """An order whose request the server is handling: the head sent and read by the app (it
    asked for the body), the body not sent yet."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(_order_head(port, headers, len(body)))
    assert sock.recv(64).startswith(b"HTTP/1.1 100")
    return sock


def _answer(sock: socket.socket) -> tuple[int, bytes]:
    """The whole response (the server closes the connection after it): status and body."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    fields = dict(line.split(b": ", 1) for line in head.split(b"\r\n")[1:] if b": " in line)
    assert int(fields[b"content-length"]) == len(body)  # complete, not cut off
    return int(head.split()[1]), body


def _serving(
    tmp_path: Path, db: Database, port: int, grace: str
) -> AbstractContextManager[subprocess.Popen[str]]:
    """`codeshelf serve` alone in its process (no workers), with ``grace`` seconds to stop."""
    env = {"CODESHELF_RATE_LIMIT_PER_MINUTE": "100000", "CODESHELF_SHUTDOWN_GRACE_SECONDS": grace}
    args = ("serve", "--port", str(port), "--workers", "1")
    return codeshelf_process(tmp_path, db.url, *args, env=env)


def _up(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


# What is the server's to finish is uvicorn's graceful shutdown, the same on either database:
# SQLite only (a server process costs seconds to start on a busy machine).
@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_sigterm_lets_the_server_answer_its_requests_in_flight_then_exit_0(
    db: Database, shop: factories.Shop, tmp_path: Path
) -> None:
    body = json.dumps({"product_id": "psn-us-50", "quantity": 2}).encode()
    port = _free_port()
    with _serving(tmp_path, db, port, grace="5") as server:
        assert _until(lambda: _up(port))
        started = [_started_order(port, shop.a.headers, body) for _ in range(4)]
        stuck = _started_order(port, shop.a.headers, body)  # its body never comes
        server.send_signal(signal.SIGTERM)
        assert _until(_logged(tmp_path, "Shutting down"))
        assert _until(lambda: not _up(port))  # no new connections meanwhile
        for sock in started:
            sock.sendall(body)
        answers = [_answer(sock) for sock in started]
        # The stuck one holds it no longer than the grace period (without one: for ever).
        assert server.wait(timeout=60) == 0
        stuck.close()
    assert [status for status, _ in answers] == [201] * 4
    assert {json.loads(text)["status"] for _, text in answers} == {"delivered"}
    assert order_count(db) == 4 and available_codes(db) == 20 - 8  # the stuck one: nothing
    assert violations(db) == []
