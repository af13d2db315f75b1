"""Seed 003's sandbox checklist, end to end, with codeshelf-client.

1. Map the storefront's SKUs to codeshelf product ids by region, denomination and currency.
2. Place one idempotent order: its Idempotency-Key is written to the reseller's own records
   *before* the request, so a crash or a lost answer is retried with the same key (run the
   script again: the order is replayed, never bought twice).
3. Receive its webhook on a loopback receiver and verify the signature and timestamp.
4. Fall back to the events feed (from a stored cursor) when the webhook is late.
5. Reconcile the day against the reseller's own records, reporting every difference.

Run it on a sandbox key against a server that allows loopback webhook URLs and runs its worker
(which sends webhooks)::

    CODESHELF_WEBHOOK_ALLOW_PRIVATE=true codeshelf serve &   # loopback URLs: dev/test only
    CODESHELF_WEBHOOK_ALLOW_PRIVATE=true codeshelf worker &
    CODESHELF_API_KEY=cs_test_... CODESHELF_BASE_URL=http://127.0.0.1:8000 \\
        python examples/reseller_sync.py --state ./sync-state

It exits 0 when the books agree, 1 when it reported differences.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import queue
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from codeshelf_client import (
    Codeshelf,
    FileCursor,
    Money,
    Order,
    WebhookVerificationError,
    verify_webhook,
)

# The storefront's own catalogue: its SKU -> (region, denomination, currency).
STOREFRONT = {
    "STORE-PSN-US-50": ("US", Decimal("50"), "USD"),
    "STORE-PSN-US-25": ("US", Decimal("25"), "USD"),
}
SETTLED = {"order.fulfilled", "order.failed"}


def log(message: str) -> None:
    print(message, file=sys.stderr)


# 1. SKU mapping --------------------------------------------------------------------------------


def map_skus(shelf: Codeshelf) -> dict[str, str]:
    """Storefront SKU -> codeshelf product id; a SKU with no product is reported, not guessed."""
    mapping = {}
    for sku, (region, face, currency) in STOREFRONT.items():
        found = [
            item.product_id
            for item in shelf.inventory.list()
            if (item.region, item.denomination.amount, item.denomination.currency)
            == (region, face, currency)
        ]
        if found:
            mapping[sku] = found[0]
            log(f"mapped {sku} -> {found[0]}")
        else:
            log(f"no codeshelf product for {sku} ({region} {face} {currency}): not sold")
    return mapping


# The reseller's own records ------------------------------------------------------------------


@dataclass
class Records:
    """What the reseller keeps of each order: the key it was placed with, the supplier's
    order id and what it cost (a JSON file; a real shop keeps this in its database)."""

    path: Path

    def load(self) -> dict[str, dict[str, str]]:
        if not self.path.exists():
            return {}
        data: dict[str, dict[str, str]] = json.loads(self.path.read_text())
        return data

    def save(self, orders: dict[str, dict[str, str]]) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(orders, indent=2, sort_keys=True))
        tmp.replace(self.path)

    def costs(self) -> dict[str, Money]:
        return {
            row["order_id"]: Money(amount=Decimal(row["amount"]), currency=row["currency"])
            for row in self.load().values()
            if "order_id" in row
        }


# 2. One idempotent order ---------------------------------------------------------------------


def place_order(shelf: Codeshelf, records: Records, reference: str, product_id: str) -> Order:
    orders = records.load()
    row = orders.setdefault(reference, {"idempotency_key": str(uuid.uuid4())})
    records.save(orders)  # the key is on disk before the request leaves
    order = shelf.orders.create(
        product_id=product_id,
        quantity=1,
        client_order_id=reference,
        idempotency_key=row["idempotency_key"],
    )
    row.update(order_id=order.id, amount=str(order.total.amount), currency=order.total.currency)
    records.save(orders)
    log(
        f"order {order.id} for {reference}: {order.status}"
        + (" (replayed)" if order.replayed else "")
    )
    return order


# 3. The webhook receiver ---------------------------------------------------------------------


@dataclass
class Inbox:
    secret: str = ""
    verified: queue.Queue[dict[str, Any]] = field(default_factory=queue.Queue)
    rejected: int = 0


@contextmanager
def receiver(inbox: Inbox) -> Iterator[str]:
    """A loopback HTTP receiver: 204 for a verified webhook, 400 for anything else."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            try:
                payload = verify_webhook(body, dict(self.headers.items()), inbox.secret)
            except WebhookVerificationError as exc:
                inbox.rejected += 1
                log(f"rejected a webhook: {exc}")
                self.send_response(400)
            else:
                inbox.verified.put(payload)
                self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/codeshelf-webhooks"
    finally:
        server.shutdown()
        server.server_close()


def wait_for_webhook(inbox: Inbox, order_id: str, seconds: float) -> dict[str, Any] | None:
    deadline = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)
    while (left := (deadline - dt.datetime.now(dt.UTC)).total_seconds()) > 0:
        try:
            payload = inbox.verified.get(timeout=left)
        except queue.Empty:
            return None
        if payload.get("order_id") == order_id and payload.get("event") in SETTLED:
            return payload
    return None


# 4. The polling fallback ---------------------------------------------------------------------


def settled_from_events(shelf: Codeshelf, cursor: Path, order_id: str) -> str:
    """The order's final state from the events feed (resuming where the last run stopped);
    the order itself when its event was read by an earlier run."""
    for event in shelf.events.follow(FileCursor(cursor), stop_when_idle=True):
        if event.order_id == order_id and event.type in SETTLED:
            log(f"events feed: {event.type} for {order_id}")
            return event.type
    status = shelf.orders.get(order_id).status
    log(f"no new event for {order_id}: the order says {status}")
    return {"delivered": "order.fulfilled", "failed": "order.failed"}.get(status, status)


# 5. Reconciliation ---------------------------------------------------------------------------


def reconcile(shelf: Codeshelf, records: Records, day: dt.date) -> list[dict[str, str | None]]:
    report = shelf.reconciliation.get(day)
    for line in report.currencies:
        log(f"{day} {line.currency}: opening {line.opening.amount}, closing {line.closing.amount}")
    differences = report.compare(records.costs())
    for diff in differences:
        log(f"DIFFERENCE {diff.kind} on {diff.order_id}: codeshelf {diff.theirs}, ours {diff.ours}")
    if not differences:
        log(f"{day}: {len(report.orders)} orders, the books agree")
    return [
        {
            "order_id": d.order_id,
            "kind": d.kind,
            "theirs": str(d.theirs) if d.theirs else None,
            "ours": str(d.ours) if d.ours else None,
        }
        for d in differences
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state", type=Path, default=Path("reseller-sync-state"))
    parser.add_argument("--reference", default="SYNC-1", help="the storefront's order number")
    parser.add_argument("--sku", default="STORE-PSN-US-50")
    parser.add_argument("--webhook-wait", type=float, default=10.0)
    args = parser.parse_args(argv)
    args.state.mkdir(parents=True, exist_ok=True)
    records = Records(args.state / "orders.json")
    inbox = Inbox()
    with Codeshelf(max_retry_time=30) as shelf, receiver(inbox) as url:
        mapping = map_skus(shelf)
        if args.sku not in mapping:
            return 2
        if shelf.balance.get().in_currency("USD").amount < Decimal("100"):
            shelf.sandbox.deposit("500.00", "USD")  # sandbox funds; a live key deposits by wire
        endpoint = shelf.webhook_endpoints.create(url, sorted(SETTLED))
        inbox.secret = endpoint.secret or ""
        try:
            order = place_order(shelf, records, args.reference, mapping[args.sku])
            order_id = order.id
            # A replayed order's webhooks went out when it was first placed: read the feed.
            wait = 0 if order.replayed else args.webhook_wait
            webhook = wait_for_webhook(inbox, order_id, wait)
            if webhook is not None:
                log(f"webhook verified: {webhook['event']} for {order_id}")
                outcome, via = str(webhook["event"]), "webhook"
            else:
                log("no webhook in time: falling back to the events feed")
                outcome, via = (
                    settled_from_events(shelf, args.state / "events.cursor", order_id),
                    "events",
                )
        finally:
            shelf.webhook_endpoints.delete(endpoint.id)
        differences = reconcile(shelf, records, dt.datetime.now(dt.UTC).date())
    summary = {
        "order_id": order_id,
        "outcome": outcome,
        "confirmed_by": via,
        "webhooks_rejected": inbox.rejected,
        "differences": differences,
    }
    print(json.dumps(summary))
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
