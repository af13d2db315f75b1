"""The client as a reseller uses it: typed reads, one idempotent order, typed problems, pages,
the events follower and claims with screenshots, on the real server."""

from __future__ import annotations

import asyncio
import io
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from PIL import Image

from codeshelf.kit.db import Database
from codeshelf_client import (
    AsyncCodeshelf,
    CallbackCursor,
    ClaimRefused,
    Codeshelf,
    FileCursor,
    IdempotencyKeyReused,
    InsufficientFunds,
    InsufficientStock,
    Money,
    NotFound,
    SandboxOnly,
    Unauthorized,
    ValidationFailed,
)
from tests.client.faults import CountingTransport
from tests.fixtures import factories
from tests.fixtures.factories import Shop
from tests.fixtures.http import order_count
from tests.fixtures.sandbox import issue_sandbox_key
from tests.fixtures.servers import LiveServer

USD = "USD"


def test_reads_and_one_idempotent_order_are_typed(shelf: Codeshelf, db: Database) -> None:
    [item] = shelf.inventory.list()
    assert item.product_id == "psn-us-50" and item.available and item.quantity_available == 20
    assert item.price == Money(amount=Decimal("46.50"), currency=USD)
    assert shelf.balance.get().in_currency(USD).amount == Decimal("1000.00")

    key = str(uuid.uuid4())
    placed = shelf.orders.create(
        product_id="psn-us-50", quantity=2, client_order_id="ORDER-1042", idempotency_key=key
    )
    assert placed.status == "delivered" and not placed.replayed and placed.idempotency_key == key
    assert placed.total.amount == Decimal("93.00") and placed.created_at.tzinfo is not None
    again = shelf.orders.create(
        product_id="psn-us-50", quantity=2, client_order_id="ORDER-1042", idempotency_key=key
    )
    assert again.replayed and again.id == placed.id
    assert shelf.orders.get(placed.id).client_order_id == "ORDER-1042"
    codes = shelf.orders.codes(placed.id)
    assert codes.count == 2 and all(code.state == "delivered" for code in codes.codes)
    assert shelf.balance.get().in_currency(USD).amount == Decimal("907.00")
    assert order_count(db) == 1

    # A key of the client's own making on every POST: two calls are two orders.
    shelf.orders.create(product_id="psn-us-50", quantity=1)
    shelf.orders.create(product_id="psn-us-50", quantity=1)
    assert order_count(db) == 3


def test_each_problem_type_raises_its_exception_at_once(
    live_server: LiveServer, shelf: Codeshelf, db: Database, shop: Shop
) -> None:
    broke = factories.add_partner(db, "Broke Co")
    counted = CountingTransport()
    with Codeshelf(
        broke.key, base_url=live_server.url, max_retry_time=30, transport=counted
    ) as poor:
        with pytest.raises(InsufficientFunds) as funds:
            poor.orders.create(product_id="psn-us-50", quantity=1)
        assert counted.sent == ["POST /api/v1/orders"]  # not retried
        assert funds.value.status == 402 and funds.value.problem["type"].endswith("funds")
        with pytest.raises(SandboxOnly):
            poor.sandbox.deposit("10.00", USD)

    with pytest.raises(InsufficientStock):
        shelf.orders.create(product_id="psn-us-50", quantity=21)
    with pytest.raises(ValidationFailed) as invalid:
        shelf.orders.create(items=[{"product_id": "psn-us-50", "quantity": 0}])
    assert invalid.value.pointers == ["#/items/0/quantity"]
    with pytest.raises(NotFound):
        shelf.orders.get("ord_doesnotexist")
    key = str(uuid.uuid4())
    shelf.orders.create(product_id="psn-us-50", quantity=1, idempotency_key=key)
    with pytest.raises(IdempotencyKeyReused) as reused:
        shelf.orders.create(product_id="psn-us-50", quantity=2, idempotency_key=key)
    assert reused.value.idempotency_key == key
    with (
        Codeshelf("cs_live_nope", base_url=live_server.url) as stranger,
        pytest.raises(Unauthorized),
    ):
        stranger.balance.get()
    assert order_count(db) == 1


def test_iterators_walk_every_page(shelf: Codeshelf) -> None:
    placed = [shelf.orders.create(product_id="psn-us-50", quantity=1).id for _ in range(5)]
    first = shelf.orders.list(limit=2)
    assert len(first.data) == 2 and first.next_cursor is not None
    assert [o.id for o in shelf.orders.iter(limit=2)] == placed[::-1]
    entries = list(shelf.balance.iter_ledger(limit=2))
    assert [e.type for e in entries].count("deposit") == 1 and len(entries) == 6
    assert entries[-1].balance_after.amount == Decimal("767.50")


def test_the_events_follower_resumes_from_its_stored_cursor(
    shelf: Codeshelf, tmp_path: Path
) -> None:
    cursor = tmp_path / "state" / "events.cursor"
    first = shelf.orders.create(product_id="psn-us-50", quantity=1)
    seen = [(e.type, e.order_id) for e in shelf.events.follow(cursor, stop_when_idle=True)]
    assert seen and all(order_id == first.id for _, order_id in seen)
    assert ("order.fulfilled", first.id) in seen
    assert not list(shelf.events.follow(cursor, stop_when_idle=True))

    second = shelf.orders.create(product_id="psn-us-50", quantity=1)
    # A consumer that crashes while handling an event: that event was not saved as done...
    for event in shelf.events.follow(FileCursor(cursor), stop_when_idle=True):
        crashed_on = event.id
        break
    # ...so the next run starts with it again, and goes on to the end.
    resumed = list(shelf.events.follow(cursor, stop_when_idle=True))
    assert resumed[0].id == crashed_on and {e.order_id for e in resumed} == {second.id}
    assert cursor.read_text().strip() == resumed[-1].id


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def test_a_claim_is_filed_with_screenshots_and_not_twice(shelf: Codeshelf, tmp_path: Path) -> None:
    placed = shelf.orders.create(product_id="psn-us-50", quantity=2)
    [code, _] = [c.code for c in shelf.orders.codes(placed.id).codes]
    shot = tmp_path / "psn-error.png"
    shot.write_bytes(_png())
    redemption = {"account_region": "US", "attempted_at": datetime.now(UTC)}
    claim_args = {
        "order_id": placed.id,
        "codes": [code],
        "problem": "invalid",
        "error_code": "WS-37432-9",
        "redemption": redemption,
    }
    preview = shelf.claims.preview(**claim_args)
    assert preview.would_be_filed and preview.codes[0].verdict == "eligible"
    claim = shelf.claims.create(**claim_args, screenshots=[shot, ("second.png", _png())])
    assert [e.media_type for e in claim.evidence] == ["image/png", "image/png"]
    assert claim.codes[0].code.endswith(code[-4:]) and claim.sla.triage_due_at.tzinfo
    with pytest.raises(ClaimRefused) as again:
        shelf.claims.create(**claim_args)
    assert again.value.type_slug == "claim-already-open"
    more = shelf.claims.add_evidence(claim.id, note="screenshot of the store", screenshots=[_png()])
    assert len(more.evidence) == 3
    assert [c.id for c in shelf.claims.iter(limit=1)] == [claim.id]


def test_the_sandbox_rehearses_with_the_async_client(
    live_server: LiveServer, db: Database, shop: Shop
) -> None:
    sandbox = issue_sandbox_key(db, shop.a.id)

    saved: dict[str, str] = {}  # the reseller's own store of the cursor
    cursor = CallbackCursor(lambda: saved.get("events"), lambda value: saved.update(events=value))

    async def rehearse() -> list[str]:
        async with AsyncCodeshelf(sandbox.key, base_url=live_server.url) as shelf:
            topped = await shelf.sandbox.deposit("100.00", USD)
            assert topped.balance.amount == Decimal("100.00")
            placed = await shelf.orders.create(
                product_id="psn-us-50", quantity=1, client_order_id="test_review-1"
            )
            assert placed.waiting_for == "review"
            decided = await shelf.sandbox.review(placed.id, "approve")
            assert decided.status == "delivered"
            types = [e.type async for e in shelf.events.follow(cursor, stop_when_idle=True)]
            pages = [o.id async for o in shelf.orders.iter(limit=1)]
            assert pages == [placed.id]
            return types

    types = asyncio.run(rehearse())
    assert "order.review_required" in types and types[-1] == "order.fulfilled"
    assert saved["events"].startswith("evt_")


def test_a_key_that_cannot_be_one_is_refused_when_the_client_is_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CODESHELF_API_KEY", raising=False)
    for bad in ("cs_test_…", "cs_live_abc def", "cs_live_a\tb", "cs_live_\u200b", ""):
        with pytest.raises(ValueError, match="key"):
            Codeshelf(bad)
    monkeypatch.setenv("CODESHELF_API_KEY", " cs_test_pasted-with-a-space\n")
    with Codeshelf():  # surrounding white space from a paste is dropped
        pass
