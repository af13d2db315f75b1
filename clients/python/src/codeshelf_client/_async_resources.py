"""The resources of ``AsyncCodeshelf``: ``_resources``' one for one, awaited."""

from __future__ import annotations

import asyncio
import builtins
import datetime as dt
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Literal, TypeVar

from codeshelf_client import _calls as calls
from codeshelf_client._calls import Screenshot
from codeshelf_client._cursor import CursorStore, as_store
from codeshelf_client._http import AsyncSender
from codeshelf_client._models import (
    Balance,
    Claim,
    ClaimPreview,
    DeliveryAttempt,
    Event,
    InventoryItem,
    LedgerEntry,
    Money,
    Order,
    OrderCodes,
    Page,
    Reconciliation,
    Restocked,
    TopUp,
    Triggered,
    WebhookEndpoint,
)

T = TypeVar("T")


async def pages(fetch: Callable[[str | None], Awaitable[Page[T]]]) -> AsyncIterator[T]:
    """Every item of every page, fetching the next page only when the last is used up."""
    cursor: str | None = None
    while True:
        page = await fetch(cursor)
        for item in page.data:
            yield item
        if not page.data or page.next_cursor is None or page.next_cursor == cursor:
            return
        cursor = page.next_cursor


class _Resource:
    def __init__(self, sender: AsyncSender) -> None:
        self._send = sender.send


class Inventory(_Resource):
    async def list(self) -> list[InventoryItem]:
        """Every product with your price and how many codes are available now."""
        return await self._send(calls.inventory())

    async def by_sku(self) -> dict[str, InventoryItem]:
        """The inventory keyed by product id (for mapping storefront SKUs)."""
        return {item.product_id: item for item in await self.list()}


class Balances(_Resource):
    async def get(self) -> Balance:
        return await self._send(calls.balance())

    async def alerts(self) -> list[Money]:
        return await self._send(calls.low_balance_alerts())

    async def set_alert(self, currency: str, below: Decimal | str) -> list[Money]:
        """Emit ``balance.low`` when a debit takes ``currency`` below ``below``."""
        return await self._send(calls.set_low_balance_alert(currency, below))

    async def delete_alert(self, currency: str) -> None:
        await self._send(calls.delete_low_balance_alert(currency))

    async def ledger(
        self, *, cursor: str | None = None, limit: int | None = None, currency: str | None = None
    ) -> Page[LedgerEntry]:
        return await self._send(calls.ledger(cursor, limit, currency))

    def iter_ledger(
        self, *, limit: int | None = None, currency: str | None = None
    ) -> AsyncIterator[LedgerEntry]:
        """Every wallet entry, oldest first, across pages."""
        return pages(lambda cursor: self.ledger(cursor=cursor, limit=limit, currency=currency))


class Orders(_Resource):
    async def create(
        self,
        *,
        product_id: str | None = None,
        quantity: int | None = None,
        items: Sequence[Mapping[str, Any]] | None = None,
        client_order_id: str | None = None,
        idempotency_key: str | None = None,
        allow_backorder: bool = False,
        backorder_until: dt.datetime | None = None,
    ) -> Order:
        """Place an order (``product_id`` + ``quantity``, or ``items``). Retried with the same
        Idempotency-Key until it is answered: it is bought at most once. Pass your own
        ``idempotency_key`` (stored with your order) to make retries across restarts safe too;
        ``Order.replayed`` says the answer is the first one's, replayed."""
        return await self._send(
            calls.create_order(
                items=items,
                product_id=product_id,
                quantity=quantity,
                client_order_id=client_order_id,
                idempotency_key=idempotency_key,
                allow_backorder=allow_backorder,
                backorder_until=backorder_until,
            )
        )

    async def get(self, order_id: str) -> Order:
        return await self._send(calls.get_order(order_id))

    async def list(
        self,
        *,
        cursor: str | None = None,
        limit: int | None = None,
        status: str | None = None,
        client_order_id: str | None = None,
        updated_since: dt.datetime | None = None,
    ) -> Page[Order]:
        """One page of orders, newest first."""
        return await self._send(
            calls.list_orders(cursor, limit, status, client_order_id, updated_since)
        )

    def iter(
        self,
        *,
        limit: int | None = None,
        status: str | None = None,
        client_order_id: str | None = None,
        updated_since: dt.datetime | None = None,
    ) -> AsyncIterator[Order]:
        """Every matching order, newest first, across pages."""
        return pages(
            lambda cursor: self.list(
                cursor=cursor,
                limit=limit,
                status=status,
                client_order_id=client_order_id,
                updated_since=updated_since,
            )
        )

    async def codes(self, order_id: str) -> OrderCodes:
        """The plaintext codes of a delivered order (each fetch is audited: mask them in logs)."""
        return await self._send(calls.order_codes(order_id))


class Claims(_Resource):
    async def create(
        self,
        *,
        order_id: str,
        codes: Sequence[str | Mapping[str, Any]],
        problem: str,
        remedy: Literal["replacement", "refund"] = "replacement",
        error_code: str | None = None,
        redemption: Mapping[str, Any] | None = None,
        description: str | None = None,
        screenshots: Iterable[Screenshot] = (),
    ) -> Claim:
        """File a claim on codes of one order, with screenshots (paths, bytes, open
        binary files or ``(filename, bytes)``; PNG, JPEG or WebP, up to 5), read whole once, so a
        retry sends them all again. Not retried once sent: filing twice is refused as
        ``ClaimRefused`` (``claim-already-open``)."""
        body = calls.claim_body(
            order_id, codes, problem, remedy, error_code, redemption, description
        )
        return await self._send(calls.file_claim(body, screenshots))

    async def preview(
        self,
        *,
        order_id: str,
        codes: Sequence[str | Mapping[str, Any]],
        problem: str,
        remedy: Literal["replacement", "refund"] = "replacement",
        error_code: str | None = None,
        redemption: Mapping[str, Any] | None = None,
        screenshots: Iterable[Screenshot] = (),
    ) -> ClaimPreview:
        """What filing would conclude, per code, without filing."""
        body = calls.claim_body(order_id, codes, problem, remedy, error_code, redemption, None)
        return await self._send(calls.preview_claim(body, screenshots))

    async def add_evidence(
        self,
        claim_id: str,
        *,
        error_code: str | None = None,
        redemption: Mapping[str, Any] | None = None,
        codes: Sequence[Mapping[str, Any]] = (),
        note: str | None = None,
        screenshots: Iterable[Screenshot] = (),
    ) -> Claim:
        body = calls.evidence_body(error_code, redemption, codes, note)
        return await self._send(calls.add_evidence(claim_id, body, screenshots))

    async def get(self, claim_id: str) -> Claim:
        return await self._send(calls.get_claim(claim_id))

    async def list(
        self, *, cursor: str | None = None, limit: int | None = None, status: str | None = None
    ) -> Page[Claim]:
        return await self._send(calls.list_claims(cursor, limit, status))

    def iter(self, *, limit: int | None = None, status: str | None = None) -> AsyncIterator[Claim]:
        return pages(lambda cursor: self.list(cursor=cursor, limit=limit, status=status))

    async def cancel(self, claim_id: str) -> Claim:
        return await self._send(calls.cancel_claim(claim_id))

    async def change_remedy(self, claim_id: str, remedy: Literal["replacement", "refund"]) -> Claim:
        return await self._send(calls.change_remedy(claim_id, remedy))


class Events(_Resource):
    async def list(
        self,
        *,
        after: str | None = None,
        limit: int | None = None,
        types: Sequence[str] | None = None,
    ) -> Page[Event]:
        """Events after ``after`` (an event id), oldest first."""
        return await self._send(calls.events(after, limit, types))

    async def follow(
        self,
        cursor: CursorStore | str | os.PathLike[str],
        *,
        types: Sequence[str] | None = None,
        limit: int | None = None,
        poll_interval: float = 2.0,
        stop_when_idle: bool = False,
    ) -> AsyncIterator[Event]:
        """Every event after the stored cursor, for ever (or until none is left, with
        ``stop_when_idle``): the polling fallback for late or lost webhooks.

        ``cursor`` is a ``CursorStore`` or a file path. An event's id is saved when you ask for
        the next one, so after a crash the follower resumes with the event being handled:
        at least once, in order (deduplicate on ``Event.id``, as for webhooks)."""
        store = as_store(cursor)
        while True:
            page = await self.list(after=store.load(), limit=limit, types=types)
            for event in page.data:
                yield event
                store.save(event.id)
            if not page.data:
                if stop_when_idle:
                    return
                await asyncio.sleep(poll_interval)


class WebhookEndpoints(_Resource):
    async def create(self, url: str, event_types: Sequence[str] = ()) -> WebhookEndpoint:
        """Register an endpoint (no event types: all). Keep ``secret``: it is shown once."""
        return await self._send(calls.create_endpoint(url, event_types))

    async def list(self) -> list[WebhookEndpoint]:
        return await self._send(calls.list_endpoints())

    async def get(self, endpoint_id: str) -> WebhookEndpoint:
        return await self._send(calls.get_endpoint(endpoint_id))

    async def delete(self, endpoint_id: str) -> None:
        await self._send(calls.delete_endpoint(endpoint_id))

    async def rotate_secret(self, endpoint_id: str) -> WebhookEndpoint:
        """A new secret (in ``secret``); for 24 hours webhooks are signed with both."""
        return await self._send(calls.rotate_secret(endpoint_id))

    async def enable(self, endpoint_id: str) -> WebhookEndpoint:
        return await self._send(calls.enable_endpoint(endpoint_id))

    async def deliveries(
        self, endpoint_id: str, *, limit: int | None = None
    ) -> builtins.list[DeliveryAttempt]:
        return await self._send(calls.deliveries(endpoint_id, limit))


class Reconciliations(_Resource):
    async def get(self, day: dt.date) -> Reconciliation:
        """One UTC day's money per currency and its orders."""
        return await self._send(calls.reconciliation(day))

    async def csv(self, day: dt.date) -> str:
        return await self._send(calls.reconciliation_csv(day))


class Sandbox(_Resource):
    """Rehearsal tools for ``cs_test_`` keys (a live key gets ``SandboxOnly``)."""

    async def deposit(self, amount: Decimal | str, currency: str) -> TopUp:
        return await self._send(calls.sandbox_deposit(amount, currency))

    async def restock(self) -> Restocked:
        return await self._send(calls.sandbox_restock())

    async def review(self, order_id: str, decision: Literal["approve", "reject"]) -> Order:
        return await self._send(calls.sandbox_review(order_id, decision))

    async def trigger(self, event: str) -> Triggered:
        return await self._send(calls.sandbox_trigger(event))
