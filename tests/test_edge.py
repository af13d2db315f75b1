"""Slow and oversized clients before authentication, against a real `codeshelf serve`: uploads
are refused before their body is read unless the key is good, spooled to disk when it is,
the large limit is only for the upload routes, slow heads and bodies are cut, and bad keys are
limited per client address. Each test talks from a loopback address of its own (127.0.0.x),
so that one test's bad keys never count against another's."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from codeshelf.kit.db import Database
from codeshelf.kit.settings import Settings
from tests.fixtures.edge import (
    BOUNDARY,
    Served,
    connect,
    file_part_head,
    multipart_head,
    read_answer,
    rss_bytes,
    served,
    spooled_bytes,
)
from tests.fixtures.factories import Shop
from tests.fixtures.servers import serve

MIB = 1_048_576
# The server's deadlines, short for the tests; the tests wait far longer (liveness bounds for a
# loaded machine): a connection cut in time ends the wait at once.
HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 2.0
FAILURES = 5


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[Served]:
    with served(
        tmp_path_factory.mktemp("edge"),
        sqlite_template,
        client_header_timeout_seconds=str(HEADER_TIMEOUT),
        client_body_timeout_seconds=str(BODY_TIMEOUT),
        auth_failures_per_minute=str(FAILURES),
    ) as running:
        yield running


def _client(server: Served, source: str) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=source)
    return httpx.Client(base_url=server.url, transport=transport, timeout=10)


# --- 1. Authenticate before reading a large body ------------------------------------------


@pytest.mark.parametrize(
    ("path", "key", "status"),
    [
        ("/api/v1/claims", None, b"401"),
        ("/api/v1/claims", "cs_live_not-a-key", b"401"),
        ("/api/v1/claims/cl_x/evidence", "cs_live_not-a-key", b"401"),
        ("/account/orders/ord_x/claim", None, b"303"),  # the portal: no session, to sign-in
    ],
)
def test_an_upload_without_a_good_key_is_refused_before_its_body_is_read(
    server: Served, path: str, key: str | None, status: bytes
) -> None:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with connect(server.port, "127.0.0.11") as sock:
        sock.sendall(multipart_head(path, 20 * MIB, headers) + file_part_head())
        sock.sendall(b"\0" * 65536)  # of 20 MiB: the answer must not wait for the rest
        answer = read_answer(sock)
    head = answer.split(b"\r\n\r\n", 1)[0].lower()
    assert head.startswith(b"http/1.1 " + status), answer[:300]
    assert b"connection: close" in head  # the rest of the body is never read


def test_a_client_that_waits_for_100_continue_never_sends_an_unauthorized_body(
    server: Served,
) -> None:
    """`Expect: 100-continue` (curl sends it for bodies over 1 MiB): the server asks for the
    body only once the key is good, so a refused upload costs the client nothing either."""
    headers = {"Authorization": "Bearer cs_live_not-a-key", "Expect": "100-continue"}
    with connect(server.port, "127.0.0.11") as sock:
        sock.sendall(multipart_head("/api/v1/claims/cl_x/evidence", 20 * MIB, headers))
        answer = read_answer(sock)
    assert answer.lower().startswith(b"http/1.1 401"), answer[:300]


def test_only_the_exact_upload_routes_take_large_multipart_bodies(
    client: httpx.Client, shop: Shop
) -> None:
    body = b"x" * (2 * MIB)  # over the 1 MiB JSON limit, under the 26 MiB upload limit
    headers = {**shop.a.headers, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    for path in (
        "/api/v1/claimsx",
        "/api/v1/claims/cl_x/cancel",
        "/api/v1/claims/cl_x/remedy",
        "/api/v1/claims/cl_x/evidence/more",
        "/account/claims/cl_x/remedy",
    ):
        response = client.post(path, content=body, headers=headers)
        assert response.status_code == 413, (path, response.status_code, response.text[:200])
    for path in ("/api/v1/claims", "/api/v1/claims/cl_x/evidence"):
        response = client.post(path, content=body, headers=headers)
        assert response.status_code != 413, (path, response.text[:200])
        assert response.status_code in (400, 422, 404), (path, response.text[:200])


def test_an_upload_that_declares_no_length_is_counted_as_it_streams(
    settings: Settings, db: Database, shop: Shop
) -> None:
    small = settings.model_copy(update={"max_upload_bytes": 2 * MIB})

    def chunked() -> Iterator[bytes]:  # no Content-Length: only counting can stop it
        yield file_part_head()
        for _ in range(4):
            yield b"\0" * MIB

    headers = {**shop.a.headers, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    with serve(small, db) as client:
        response = client.post("/api/v1/claims", content=chunked(), headers=headers)
    assert response.status_code == 413, response.text
    assert response.json()["type"].endswith("/payload-too-large")
    assert response.headers["connection"] == "close"


# --- 2. Uploads are spooled to disk --------------------------------------------------------


def test_half_sent_uploads_are_spooled_to_disk_not_held_in_memory(server: Served) -> None:
    """Twenty authenticated uploads, each 14 MiB into a 25 MiB screenshot, then stalled: the
    server's memory stays within 150 MB of where it was (held whole, they would be 280 MiB)."""
    count, sent = 20, 14 * MIB
    baseline = rss_bytes(server.pid)
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = connect(server.port, "127.0.0.12")
            sock.sendall(multipart_head("/api/v1/claims", 25 * MIB, server.headers))
            sock.sendall(file_part_head())
            sockets.append(sock)
        chunk = b"\x89PNG" * (MIB // 4)
        for _ in range(sent // MIB):
            for sock in sockets:
                sock.sendall(chunk)
                assert rss_bytes(server.pid) - baseline < 150 * 1_000_000
        deadline = time.monotonic() + 120  # liveness only: about a second on an idle machine
        while spooled_bytes(server.pid, server.spool) < count * (sent - 2 * MIB):
            assert rss_bytes(server.pid) - baseline < 150 * 1_000_000
            assert time.monotonic() < deadline, "the uploads never reached the disk"
            time.sleep(0.05)
        assert rss_bytes(server.pid) - baseline < 150 * 1_000_000
    finally:
        for sock in sockets:
            sock.close()


# --- 3. Slow clients are cut ---------------------------------------------------------------


def _cut_within(sock: socket.socket, seconds: float) -> bytes:
    """What the server answered before closing the connection, which it must within
    ``seconds`` (a generous bound: the deadline is far shorter)."""
    sock.settimeout(seconds)
    try:
        return read_answer(sock)
    except TimeoutError:
        pytest.fail(f"the server kept a slow connection open past {seconds} s")


def test_a_connection_that_sends_nothing_is_closed(server: Served) -> None:
    with connect(server.port, "127.0.0.13") as sock:
        answer = _cut_within(sock, HEADER_TIMEOUT + 30)
    assert answer.startswith(b"HTTP/1.1 408"), answer


def test_headers_that_trickle_are_cut(server: Served) -> None:
    with connect(server.port, "127.0.0.13") as sock:
        sock.sendall(b"GET /api/v1/inventory HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        try:
            while time.monotonic() - started < HEADER_TIMEOUT + 30:
                sock.sendall(b"X-a: b\r\n")  # a header line every 0.2 s, never the end
                time.sleep(0.2)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = _cut_within(sock, 5)
    assert answer.startswith(b"HTTP/1.1 408"), answer


def test_a_body_that_trickles_is_cut(server: Served) -> None:
    head = (
        "POST /api/v1/orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {server.key}\r\nIdempotency-Key: slow-1\r\n"
        "Content-Length: 1000\r\n\r\n"
    ).encode()
    with connect(server.port, "127.0.0.13") as sock:
        sock.sendall(head + b'{"items": [')
        started = time.monotonic()
        try:
            while time.monotonic() - started < BODY_TIMEOUT + 30:
                sock.sendall(b" ")  # a byte every 0.2 s: each read is quick, the body never ends
                time.sleep(0.2)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = _cut_within(sock, 5)
    assert answer.startswith(b"HTTP/1.1 408"), answer


def test_hundreds_of_half_open_connections_do_not_pin_the_server(server: Served) -> None:
    sockets = []
    try:
        for index in range(300):
            sock = connect(server.port, "127.0.0.14")
            sock.sendall(f"GET /api/v1/inventory?n={index} HTTP/1.1\r\nHost: x\r\n".encode())
            sockets.append(sock)
        with _client(server, "127.0.0.15") as http:  # served meanwhile
            assert http.get("/api/v1/inventory", headers=server.headers).status_code == 200
        for sock in sockets:  # and every half-open one is cut
            _cut_within(sock, HEADER_TIMEOUT + 30)
    finally:
        for sock in sockets:
            sock.close()


def test_a_kept_alive_connection_is_not_cut_between_requests(server: Served) -> None:
    """The head deadline runs from a request's first byte; idle time between requests is
    uvicorn's keep-alive (5 s), and each request gets a deadline of its own."""
    with _client(server, "127.0.0.16") as http:
        assert http.get("/api/v1/inventory", headers=server.headers).status_code == 200
        time.sleep(HEADER_TIMEOUT * 1.5)
        assert http.get("/api/v1/inventory", headers=server.headers).status_code == 200
        assert http.get("/api/v1/inventory", headers=server.headers).status_code == 200


# --- 4. Bad keys are limited per client address --------------------------------------------


def test_bad_keys_are_limited_per_client_address(server: Served) -> None:
    with _client(server, "127.0.0.17") as guesser, _client(server, "127.0.0.18") as other:
        for index in range(FAILURES):
            bad = {"Authorization": f"Bearer cs_live_guess{index}"}
            assert guesser.get("/api/v1/inventory", headers=bad).status_code == 401
        refused = guesser.get("/api/v1/inventory", headers={"Authorization": "Bearer x y"})
        assert refused.status_code == 429, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        # Even the right key, from that address, until the minute is over: no oracle.
        assert guesser.get("/api/v1/inventory", headers=server.headers).status_code == 429
        # A header naming another address is a lie from a client that is not a proxy.
        spoofed = {**server.headers, "X-Forwarded-For": "203.0.113.9"}
        assert guesser.get("/api/v1/inventory", headers=spoofed).status_code == 429
        # Another address is not affected.
        assert other.get("/api/v1/inventory", headers=server.headers).status_code == 200


def test_bad_operator_keys_count_too(server: Served) -> None:
    with _client(server, "127.0.0.19") as guesser:
        bad = {"Authorization": "Bearer cs_op_guess"}
        for _ in range(FAILURES):
            assert guesser.get("/api/v1/admin/partners", headers=bad).status_code == 404
        refused = guesser.get("/api/v1/admin/partners", headers=bad)
        assert refused.status_code == 429
        assert guesser.get("/api/v1/inventory", headers=server.headers).status_code == 429
        assert json.loads(refused.text)["status"] == 429
