"""Retries that never buy twice, attacked: a response lost after the server committed the order,
429 storms (the server's own per-key limit, and a proxy's with a short Retry-After), and a
server restarted while the client retries."""

from __future__ import annotations

import asyncio
import hashlib
import io
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from PIL import Image

from codeshelf.idempotency import service as idempotency
from codeshelf.kit.db import Database
from codeshelf.kit.settings import Settings
from codeshelf.orders.schemas import OrderCreate
from codeshelf.partners import service as partners
from codeshelf_client import APIConnectionError, AsyncCodeshelf, Codeshelf, Order, RateLimited
from tests.client.faults import CountingTransport, Proxy, RestartableServer
from tests.fixtures import factories
from tests.fixtures.factories import Shop
from tests.fixtures.http import order_count
from tests.fixtures.sandbox import issue_sandbox_key
from tests.fixtures.servers import LIVE_SERVERS, LiveServer

ORDERS = b"POST /api/v1/orders "
pytestmark = pytest.mark.live


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def _upstream(server: LiveServer) -> tuple[str, int]:
    host, port = server.sock.getsockname()[:2]
    return host, port


def test_a_response_lost_after_the_order_committed_is_replayed_not_bought_again(
    live_server: LiveServer, db: Database, shop: Shop
) -> None:
    with (
        Proxy(_upstream(live_server), drop_responses_to={ORDERS: 2}) as proxy,
        Codeshelf(shop.a.key, base_url=proxy.url, max_retry_time=10) as shelf,
    ):
        order = shelf.orders.create(product_id="psn-us-50", quantity=2)
        assert proxy.dropped == 2  # the server answered twice; the client heard neither
        assert order.replayed and order.status == "delivered"
        sent = [line for line in proxy.requests if line.startswith(ORDERS)]
        assert len(sent) == 3
        assert order_count(db) == 1
        assert shelf.balance.get().in_currency("USD").amount == Decimal("907.00")
        assert shelf.orders.codes(order.id).count == 2


def test_the_async_client_retries_a_lost_answer_with_the_same_key(
    live_server: LiveServer, db: Database, shop: Shop
) -> None:
    async def buy() -> Order:
        async with AsyncCodeshelf(shop.a.key, base_url=proxy.url, max_retry_time=10) as shelf:
            return await shelf.orders.create(product_id="psn-us-50", quantity=1)

    with Proxy(_upstream(live_server), drop_responses_to={ORDERS: 1}) as proxy:
        order = asyncio.run(buy())
    assert order.replayed and proxy.dropped == 1 and order_count(db) == 1


def test_without_retry_time_the_unknown_outcome_carries_the_key_to_retry_with(
    live_server: LiveServer, db: Database, shop: Shop
) -> None:
    with (
        Proxy(_upstream(live_server), drop_responses_to={ORDERS: 1}) as proxy,
        Codeshelf(shop.a.key, base_url=proxy.url, max_retry_time=0) as shelf,
    ):
        with pytest.raises(APIConnectionError) as lost:
            shelf.orders.create(product_id="psn-us-50", quantity=1, client_order_id="A-1")
        key = lost.value.idempotency_key
        assert key is not None and order_count(db) == 1
        # The caller retries later with the key it was given: the same order, not a second.
        again = shelf.orders.create(
            product_id="psn-us-50", quantity=1, client_order_id="A-1", idempotency_key=key
        )
        assert again.replayed and order_count(db) == 1
        assert shelf.balance.get().in_currency("USD").amount == Decimal("953.50")


def test_a_request_the_server_does_not_deduplicate_is_not_repeated_after_it_was_sent(
    live_server: LiveServer, db: Database, shop: Shop
) -> None:
    top_up = b"POST /api/v1/sandbox/deposits "
    sandbox = issue_sandbox_key(db, shop.a.id)
    with (
        Proxy(_upstream(live_server), drop_responses_to={top_up: 1}) as proxy,
        Codeshelf(sandbox.key, base_url=proxy.url, max_retry_time=10) as shelf,
    ):
        with pytest.raises(APIConnectionError):
            shelf.sandbox.deposit("10.00", "USD")
        assert [line for line in proxy.requests if line.startswith(top_up)] == [
            top_up + b"HTTP/1.1"
        ]
        # Credited once: a blind retry would have credited it twice.
        assert shelf.balance.get().in_currency("USD").amount == Decimal("10.00")


def test_a_429_storm_from_the_per_key_limit_ends_within_the_budget(
    live_server: LiveServer, db: Database, shop: Shop
) -> None:
    limited = factories.add_partner(db, "Tight Budget", rate_limit=2)
    factories.deposit(db, limited.id, "100.00")
    counted = CountingTransport()
    with Codeshelf(
        limited.key, base_url=live_server.url, max_retry_time=2, transport=counted
    ) as shelf:
        shelf.balance.get()
        shelf.inventory.list()
        with pytest.raises(RateLimited) as limit:
            shelf.orders.create(product_id="psn-us-50", quantity=1)
        # The server asks for up to a minute: more than the budget, so no waiting for it (one
        # attempt, below).
        assert limit.value.retry_after is not None and limit.value.retry_after > 2
        assert limit.value.headers["RateLimit-Policy"] == '"default";q=2;w=60'
    assert counted.sent.count("POST /api/v1/orders") == 1
    assert order_count(db) == 0


def test_a_429_storm_is_waited_out_honouring_retry_after(
    live_server: LiveServer, db: Database, shop: Shop
) -> None:
    with (
        Proxy(_upstream(live_server), storm=(1, 1)) as proxy,
        Codeshelf(shop.a.key, base_url=proxy.url, max_retry_time=10) as shelf,
    ):
        order = shelf.orders.create(product_id="psn-us-50", quantity=1)
        finished = time.monotonic()
    assert not order.replayed and order_count(db) == 1
    # Retry-After: 1 was honoured (a lower bound, never an upper one).
    assert len(proxy.stormed) == 1 and finished - proxy.stormed[0] >= 1
    assert len(proxy.requests) == 2


def test_the_async_client_honours_a_retry_after_given_as_an_http_date(
    live_server: LiveServer, db: Database, shop: Shop
) -> None:
    async def buy() -> tuple[Order, float]:
        async with AsyncCodeshelf(shop.a.key, base_url=proxy.url, max_retry_time=10) as shelf:
            order = await shelf.orders.create(product_id="psn-us-50", quantity=1)
            return order, time.monotonic()

    # Two seconds from now, to the second: at least one second of waiting.
    with Proxy(_upstream(live_server), storm=(1, 2), storm_as_date=True) as proxy:
        order, finished = asyncio.run(buy())
    assert not order.replayed and order_count(db) == 1 and len(proxy.requests) == 2
    assert finished - proxy.stormed[0] >= 1


def test_the_server_restarted_mid_retry_takes_the_order_once(
    settings: Settings, db: Database, shop: Shop
) -> None:
    server = RestartableServer(settings)
    server.start()
    try:
        with Codeshelf(shop.a.key, base_url=server.url, max_retry_time=30) as shelf:
            key = str(uuid.uuid4())
            first = shelf.orders.create(product_id="psn-us-50", quantity=1, idempotency_key=key)
            server.stop()
            comeback = server.start_later(0.5)
            again = shelf.orders.create(product_id="psn-us-50", quantity=1, idempotency_key=key)
            comeback.join()
            assert again.replayed and again.id == first.id
            fresh = shelf.orders.create(product_id="psn-us-50", quantity=1)
            assert not fresh.replayed
    finally:
        server.stop()
    assert order_count(db) == 2


def test_a_key_held_by_a_crashed_request_is_waited_for_then_bought_once(
    settings: Settings, db: Database, shop: Shop
) -> None:
    """A request that died holding its key (409 idempotency-key-in-use, Retry-After: 1) until
    its lock expires: the client waits and retries with the same key, and buys once."""
    brief = settings.model_copy(update={"idempotency_lock_seconds": 1})
    body = {"product_id": "psn-us-50", "quantity": 1}
    fingerprint = idempotency.fingerprint(
        "POST", "/api/v1/orders", OrderCreate.model_validate(body).fingerprint_payload()
    )
    with db.read_session() as session:
        partner_id = partners.get_partner(session, shop.a.id).id
    held = idempotency._claim(db, brief, partner_id, "held-by-the-dead", fingerprint)
    assert isinstance(held, idempotency._Claim)
    counted = CountingTransport()
    with (
        LIVE_SERVERS.serving(brief) as server,
        Codeshelf(shop.a.key, base_url=server.url, max_retry_time=10, transport=counted) as shelf,
    ):
        order = shelf.orders.create(**body, idempotency_key="held-by-the-dead")
    assert not order.replayed and order.status == "delivered"
    assert counted.sent.count("POST /api/v1/orders") >= 2
    assert order_count(db) == 1


def test_a_claim_retried_after_a_429_sends_its_screenshots_whole(
    live_server: LiveServer, shop: Shop, tmp_path: Path
) -> None:
    """Screenshots given as a generator of open files: read once, sent whole on the retry."""
    with Codeshelf(shop.a.key, base_url=live_server.url) as direct:
        placed = direct.orders.create(product_id="psn-us-50", quantity=1)
        [code] = [c.code for c in direct.orders.codes(placed.id).codes]
    images = [_png(64, 48), _png(80, 60)]
    for i, image in enumerate(images):
        (tmp_path / f"shot-{i}.png").write_bytes(image)
    claims = b"POST /api/v1/claims "
    with (
        Proxy(_upstream(live_server), storm=(1, 0)) as proxy,
        Codeshelf(shop.a.key, base_url=proxy.url, max_retry_time=10) as shelf,
        (tmp_path / "shot-0.png").open("rb") as first,
        (tmp_path / "shot-1.png").open("rb") as second,
    ):
        claim = shelf.claims.create(
            order_id=placed.id,
            codes=[code],
            problem="invalid",
            error_code="WS-37432-9",
            redemption={"account_region": "US", "attempted_at": datetime.now(UTC)},
            screenshots=(shot for shot in (first, second)),
        )
    sent = [line for line in proxy.requests if line.startswith(claims)]
    assert sent == [claims + b"HTTP/1.1"] * 2  # refused with 429 once, then filed
    assert [(e.size_bytes, e.sha256) for e in claim.evidence] == [
        (len(image), hashlib.sha256(image).hexdigest()) for image in images
    ]
