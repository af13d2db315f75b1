"""The served configuration, for real: Debian's nginx with deploy/nginx.conf (TLS, proxy
headers, timeouts, body sizes) in front of a real `codeshelf serve`. The nginx binary is
CODESHELF_NGINX (`make test` installs it with scripts/ensure-nginx.sh); without it these
tests are skipped, except on CI where they fail."""

from __future__ import annotations

import os
import select
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.edge import (
    Proxy,
    Served,
    file_part_head,
    multipart_head,
    nginx_in_front,
    read_answer,
    served,
)

MIB = 1_048_576
FAILURES = 5
NGINX_TIMEOUT = 1  # client_header_timeout and client_body_timeout, shortened for the test


@pytest.fixture(scope="module")
def nginx_binary() -> str:
    binary = os.environ.get("CODESHELF_NGINX")
    if not binary:
        message = "CODESHELF_NGINX is not set (run `make test`: scripts/ensure-nginx.sh)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return binary


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[Served]:
    with served(
        tmp_path_factory.mktemp("behind-nginx"),
        sqlite_template,
        "--host",
        "127.0.0.1",
        auth_failures_per_minute=str(FAILURES),
        client_body_timeout_seconds="3",
    ) as running:
        yield running


@pytest.fixture(scope="module")
def proxy(
    nginx_binary: str, app: Served, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Proxy]:
    with nginx_in_front(
        nginx_binary,
        tmp_path_factory.mktemp("nginx"),
        app.port,
        client_header_timeout=NGINX_TIMEOUT,
        client_body_timeout=NGINX_TIMEOUT,
    ) as running:
        yield running


def _client(proxy: Proxy, source: str) -> httpx.Client:
    """A client verifying the proxy's certificate, talking from loopback address ``source``."""
    context = ssl.create_default_context(cafile=str(proxy.cert))
    transport = httpx.HTTPTransport(local_address=source, verify=context)
    return httpx.Client(base_url=proxy.url, transport=transport, timeout=15)


def _tls(proxy: Proxy, source: str) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=str(proxy.cert))
    raw = socket.create_connection(("127.0.0.1", proxy.https_port), 15, (source, 0))
    return context.wrap_socket(raw, server_hostname="localhost")


def _closed_within(sock: socket.socket, seconds: float) -> bytes:
    sock.settimeout(seconds)
    try:
        return read_answer(sock)
    except TimeoutError:
        pytest.fail(f"nginx kept a slow connection open past {seconds} s")
    except ssl.SSLError:
        return b""


def test_tls_is_served_and_plain_http_only_redirects(proxy: Proxy, app: Served) -> None:
    with _client(proxy, "127.0.0.41") as http:
        answer = http.get("/api/v1/inventory", headers=app.headers)
    assert answer.status_code == 200, answer.text
    assert answer.http_version == "HTTP/1.1"
    assert answer.headers["server"] == "nginx"  # no version
    assert "max-age=" in answer.headers["strict-transport-security"]
    plain = httpx.get(f"http://127.0.0.1:{proxy.http_port}/api/v1/inventory", headers=app.headers)
    assert plain.status_code == 301
    assert plain.headers["location"].startswith("https://")
    assert plain.headers["server"] == "nginx"


def test_the_failed_key_limit_counts_the_address_nginx_saw(proxy: Proxy, app: Served) -> None:
    """A client cannot pass itself off as another address past nginx: not to escape the limit
    (a new X-Forwarded-For each time), not to get another client locked out (naming it)."""
    with _client(proxy, "127.0.0.42") as guesser, _client(proxy, "127.0.0.43") as victim:
        for index in range(FAILURES):
            lies = {"X-Forwarded-For": f"203.0.113.{index}, 127.0.0.43", "X-Real-IP": "127.0.0.43"}
            bad = {"Authorization": f"Bearer cs_live_guess{index}", **lies}
            assert guesser.get("/api/v1/inventory", headers=bad).status_code == 401
        refused = guesser.get(
            "/api/v1/inventory", headers={**app.headers, "X-Forwarded-For": "198.51.100.7"}
        )
        assert refused.status_code == 429, refused.text
        assert int(refused.headers["retry-after"]) >= 1
        assert victim.get("/api/v1/inventory", headers=app.headers).status_code == 200


def test_oversized_bodies_get_413_from_nginx(proxy: Proxy, app: Served) -> None:
    with _client(proxy, "127.0.0.44") as http:
        json_body = {**app.headers, "Content-Type": "application/json", "Idempotency-Key": "big"}
        big = http.post("/api/v1/orders", content=b" " * (2 * MIB), headers=json_body)
        assert big.status_code == 413
        assert big.headers["content-type"] == "application/problem+json"
        assert big.json()["status"] == 413
        # Claim uploads may be larger (26 MiB): 2 MiB reaches the app, which judges it.
        upload = {**app.headers, "Content-Type": "multipart/form-data; boundary=x"}
        passed = http.post("/api/v1/claims", content=b"x" * (2 * MIB), headers=upload)
        assert passed.status_code == 400, passed.text  # not multipart: the app's answer
    with _tls(proxy, "127.0.0.44") as sock:  # declared too large: refused before the body
        sock.sendall(multipart_head("/api/v1/claims", 27 * MIB, app.headers, "localhost"))
        sock.settimeout(30)
        answer = sock.recv(65536)  # the answer, at once (nginx then lingers for the body)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_slow_headers_are_cut_by_nginx(proxy: Proxy) -> None:
    with _tls(proxy, "127.0.0.45") as sock:
        sock.sendall(b"GET /api/v1/inventory HTTP/1.1\r\nHost: localhost\r\n")
        started = time.monotonic()
        try:
            while time.monotonic() - started < NGINX_TIMEOUT + 30:
                sock.sendall(b"X-a: b\r\n")
                time.sleep(0.3)
            pytest.fail("nginx kept trickling headers coming")
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass


def test_a_stalled_body_is_cut_by_nginx(proxy: Proxy, app: Served) -> None:
    head = (
        "POST /api/v1/orders HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {app.key}\r\nIdempotency-Key: stalled\r\n"
        "Content-Length: 1000\r\n\r\n"
    ).encode()
    with _tls(proxy, "127.0.0.46") as sock:
        sock.sendall(head + b'{"items": [')
        _closed_within(sock, NGINX_TIMEOUT + 30)


def test_a_trickling_upload_is_cut(proxy: Proxy, app: Served) -> None:
    """Uploads go to the app unbuffered (it checks the key first), and a body that trickles a
    byte at a time is still cut (nginx's client_body_timeout; behind it, the app's deadline
    for the whole body): the connection ends, 408 or closed without an answer."""
    with _tls(proxy, "127.0.0.47") as sock:
        sock.sendall(multipart_head("/api/v1/claims", MIB, app.headers, "localhost"))
        sock.sendall(file_part_head())
        started = time.monotonic()
        while not select.select([sock], [], [], 0.2)[0]:
            assert time.monotonic() - started < 40, "the trickling upload was never cut"
            sock.sendall(b"\0")
        answer = _closed_within(sock, 5)
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer[:200]
