"""What a partner's receiver answers can never stop the worker or flood it: a NUL byte, other
control characters, or an endless body. Real HTTP servers on loopback, answering as told."""

from __future__ import annotations

import socket
from http.server import BaseHTTPRequestHandler

import httpx
from sqlalchemy import select

from codeshelf.kit.db import Database
from codeshelf.kit.vault import Vault
from codeshelf.webhooks import delivery
from codeshelf.webhooks.models import DeliveryAttempt
from tests.fixtures import factories
from tests.fixtures.http import order
from tests.fixtures.receiver import answering


def _register(client: httpx.Client, shop: factories.Shop, url: str) -> None:
    created = client.post(
        "/api/v1/webhook-endpoints",
        json={"url": url, "event_types": ["order.fulfilled"]},
        headers=shop.a.headers,
    )
    assert created.status_code == 201, created.text


def _excerpts(db: Database) -> list[str | None]:
    with db.read_session() as session:
        return list(session.scalars(select(DeliveryAttempt.response_excerpt)))


def test_control_characters_in_an_answer_are_stored_without_them(
    hook_client: httpx.Client, db: Database, vault: Vault, shop: factories.Shop
) -> None:
    def nul(handler: BaseHTTPRequestHandler) -> None:
        body = b"ok\x00\x00 accepted\x1b[31m \x85done\n"
        handler.send_response(200)
        handler.send_header("content-length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    with answering(nul) as url:
        _register(hook_client, shop, url)
        order(hook_client, shop.a.headers)
        with httpx.Client() as sender:
            assert delivery.run_once(db, vault, sender, allow_private=True) == 1
    # PostgreSQL refuses NUL in text: storing this once stopped the worker for everyone.
    assert _excerpts(db) == ["ok accepted[31m \ufffddone\n"]  # not UTF-8: replaced


def test_an_endless_answer_is_read_no_further_than_the_log_keeps(
    hook_client: httpx.Client, db: Database, vault: Vault, shop: factories.Shop
) -> None:
    sent = [0]
    declared = 200 * 1024 * 1024

    def endless(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("content-length", str(declared))
        handler.end_headers()
        chunk = b"x" * 65536
        try:
            while sent[0] < declared:
                handler.wfile.write(chunk)
                sent[0] += len(chunk)
        except OSError:  # the worker closed the connection: what we wanted
            pass

    with answering(endless) as url:
        _register(hook_client, shop, url)
        order(hook_client, shop.a.headers)
        with httpx.Client() as sender:
            assert delivery.run_once(db, vault, sender, allow_private=True) == 1
    [excerpt] = _excerpts(db)
    assert excerpt == "x" * delivery.EXCERPT
    assert sent[0] < declared // 10  # it stopped reading long before the end


def test_a_failed_connection_is_logged_without_telling_what_answered(
    hook_client: httpx.Client, db: Database, vault: Vault, shop: factories.Shop
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    _register(hook_client, shop, f"http://127.0.0.1:{closed}/hooks")
    order(hook_client, shop.a.headers)
    with httpx.Client() as sender:
        assert delivery.run_once(db, vault, sender, allow_private=True) == 1
    with db.read_session() as session:
        [error] = session.scalars(select(DeliveryAttempt.error))
    assert error == "could not connect"  # not "[Errno 111] Connection refused": a port scan
