"""How a delivery connects: one deadline per attempt, however a receiver spreads its answer;
the endpoint's host resolved once, every address vetted, and the connection made to the vetted
address while TLS is verified for the name. Real receivers on loopback (TLS with a throwaway
authority); the resolver is the delivery client's own parameter, so no DNS is needed."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler

import httpx
import pytest
from sqlalchemy import select

from codeshelf.kit.db import Database
from codeshelf.kit.vault import Vault
from codeshelf.webhooks import delivery, urls
from codeshelf.webhooks.models import Delivery, DeliveryAttempt
from tests.fixtures import factories
from tests.fixtures.http import order
from tests.fixtures.receiver import Receiver, answering
from tests.fixtures.tls import Authority

NAME = "hooks.partner.test"


def _register(client: httpx.Client, shop: factories.Shop, url: str) -> None:
    created = client.post(
        "/api/v1/webhook-endpoints",
        json={"url": url, "event_types": ["order.fulfilled"]},
        headers=shop.a.headers,
    )
    assert created.status_code == 201, created.text


def _attempts(db: Database) -> list[tuple[int | None, str | None]]:
    with db.read_session() as session:
        rows = session.execute(select(DeliveryAttempt.status_code, DeliveryAttempt.error))
        return [(status, error) for status, error in rows]


def _delivery(db: Database) -> tuple[str, int]:
    with db.read_session() as session:
        [row] = session.scalars(select(Delivery))
        return row.state, row.attempts


class Resolver:
    """A name's addresses as told, one list per lookup (the last one repeated); counts lookups."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = answers
        self.lookups: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        return self.answers[min(len(self.lookups), len(self.answers)) - 1]


# The deadline: a total per attempt, not per read


def _trickle_head(handler: BaseHTTPRequestHandler) -> None:
    for byte in b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok":
        handler.wfile.write(bytes([byte]))
        handler.wfile.flush()
        time.sleep(0.2)


def _trickle_body(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("content-length", "40")
    handler.end_headers()
    for _ in range(40):
        handler.wfile.write(b"x")
        handler.wfile.flush()
        time.sleep(0.2)


@pytest.mark.parametrize("trickle", [_trickle_head, _trickle_body], ids=["head", "body"])
def test_a_receiver_trickling_its_answer_is_cut_at_the_deadline_and_it_is_a_failure(
    hook_client: httpx.Client,
    db: Database,
    vault: Vault,
    shop: factories.Shop,
    trickle: object,
) -> None:
    # Each byte comes well within any per-read time-out; the whole answer would take 8 s.
    with answering(trickle) as url:  # type: ignore[arg-type]
        _register(hook_client, shop, url)
        order(hook_client, shop.a.headers)
        with delivery.client(allow_private=True, deadline=1.0) as sender:
            started = time.monotonic()
            assert delivery.run_once(db, vault, sender, allow_private=True) == 1
            took = time.monotonic() - started
    assert _attempts(db) == [(None, "timed out")]
    assert _delivery(db) == ("pending", 1)  # to be tried again on the schedule
    assert took < 6  # liveness: cut long before the answer's end (8 s), not a speed figure


def test_a_name_lookup_that_takes_its_time_is_cut_at_the_deadline_too() -> None:
    # The endpoint's name servers are the partner's: they may answer as slowly as they like.
    release, answered = threading.Event(), threading.Event()

    def slow(_host: str, _port: int) -> list[str]:
        release.wait(timeout=20)
        answered.set()
        return ["127.0.0.1"]

    try:
        with (
            delivery.client(allow_private=True, resolve=slow, deadline=0.5) as sender,
            pytest.raises(httpx.TimeoutException),
        ):
            sender.post(f"https://{NAME}/hooks", content=b"{}")
        assert not answered.is_set()  # the attempt ended while the lookup still went on
    finally:
        release.set()


# One lookup, every address vetted, connected to as vetted


def test_the_connection_goes_to_the_address_resolved_once_not_a_second_lookup(
    hook_client: httpx.Client, db: Database, vault: Vault, shop: factories.Shop
) -> None:
    # The name answers the receiver's address to the first lookup, and an "internal" service
    # on the same port to any later one (DNS rebinding): only the first is ever reached.
    with Receiver() as public, Receiver(host="127.0.0.2", port=public.port) as internal:
        _register(hook_client, shop, f"http://{NAME}:{public.port}/hooks")
        order(hook_client, shop.a.headers)
        resolver = Resolver(["127.0.0.1"], ["127.0.0.2"])
        with delivery.client(allow_private=True, resolve=resolver) as sender:
            assert delivery.run_once(db, vault, sender, allow_private=True) == 1
    assert resolver.lookups == [NAME]
    assert len(public.received) == 1 and internal.received == []
    assert public.received[0].headers["host"] == f"{NAME}:{public.port}"  # the name, not the IP
    assert _delivery(db) == ("succeeded", 1)


@pytest.mark.parametrize(
    "internal",
    [
        "127.0.0.1",
        "::1",
        "10.1.2.3",
        "169.254.169.254",
        "100.64.0.1",
        "192.0.0.8",  # IETF protocol assignments (192.0.0.0/24)
        "::ffff:127.0.0.1",  # IPv4-mapped
        "::127.0.0.1",  # IPv4-compatible
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "fe80::1",
        "fd00::1",
    ],
)
def test_a_name_with_any_internal_address_is_refused_before_connecting(internal: str) -> None:
    resolver = Resolver(["93.184.216.34", internal])
    with (
        delivery.client(allow_private=False, resolve=resolver) as sender,
        pytest.raises(urls.UnsafeUrlError, match="resolves to a private"),
    ):
        sender.post(f"https://{NAME}/hooks", content=b"{}")
    assert resolver.lookups == [NAME]


@pytest.mark.parametrize("literal", ["[::ffff:127.0.0.1]", "[64:ff9b::7f00:1]", "192.0.0.8"])
def test_an_internal_address_literal_is_refused_without_a_lookup(literal: str) -> None:
    resolver = Resolver(["93.184.216.34"])
    with (
        delivery.client(allow_private=False, resolve=resolver) as sender,
        pytest.raises(urls.UnsafeUrlError),
    ):
        sender.post(f"https://{literal}/hooks", content=b"{}")
    assert resolver.lookups == []


# TLS stays verified for the name


@pytest.mark.parametrize(
    ("host", "delivered"),
    [(NAME, True), ("other.partner.test", False), ("127.0.0.1", False)],
    ids=["its-name", "another-name", "the-address"],
)
def test_tls_is_verified_for_the_name_while_connecting_to_the_vetted_address(
    hook_client: httpx.Client,
    db: Database,
    vault: Vault,
    shop: factories.Shop,
    host: str,
    delivered: bool,
) -> None:
    authority, sni = Authority.make(), list[str]()
    with Receiver(tls=authority.server(NAME, sni)) as receiver:
        _register(hook_client, shop, f"https://{host}:{receiver.port}/hooks")
        order(hook_client, shop.a.headers)
        resolver = Resolver(["127.0.0.1"])
        with delivery.client(
            allow_private=True, resolve=resolver, verify=authority.trusting()
        ) as sender:
            assert delivery.run_once(db, vault, sender, allow_private=True) == 1
    if delivered:
        assert sni == [NAME] and _attempts(db) == [(200, None)]
        assert receiver.received[0].headers["host"] == f"{NAME}:{receiver.port}"
        return
    # A certificate for another name than the URL's is refused, whatever address answered.
    assert receiver.received == []
    assert _attempts(db) == [(None, "could not connect")]
