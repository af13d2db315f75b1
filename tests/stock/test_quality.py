"""What the console's stock pages read: quality per batch and per supplier (delivered, claimed,
confirmed defective, the rates), and the products whose stock covers too few days of sales."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from codeshelf.catalog import service as catalog
from codeshelf.claims import service as claims
from codeshelf.kit.clock import utcnow
from codeshelf.kit.db import Database
from codeshelf.kit.errors import InvalidInputError
from codeshelf.kit.vault import Vault
from codeshelf.orders.models import Order
from codeshelf.stock import service as stock
from codeshelf.stock.models import Code
from tests.fixtures import factories
from tests.fixtures.backorders import backorder
from tests.fixtures.claims import claim_body, file_claim, issue_operator_key, place
from tests.fixtures.http import order


def import_batch(
    db: Database, vault: Vault, reference: str, count: int, supplier: str | None, sku: str
) -> None:
    with db.session() as session:
        stock.import_codes(
            session,
            vault,
            sku=sku,
            batch_reference=reference,
            lines=enumerate((factories.random_code() for _ in range(count)), start=1),
            supplier=supplier,
        )


def decide(client: httpx.Client, headers: dict[str, str], claim_id: str, action: str) -> None:
    body: dict[str, Any] = {"reason": "checked"}
    if action == "reject":
        body["rule"] = "not_covered.public_exposure"
    response = client.post(f"/api/v1/admin/claims/{claim_id}/{action}", json=body, headers=headers)
    assert response.status_code == 200, response.text


def test_quality_per_batch_and_supplier_counts_what_went_out_and_came_back(
    client: httpx.Client, db: Database, vault: Vault, database_url: str
) -> None:
    shop = factories.make_shop(db, vault, stock_count=0)
    import_batch(db, vault, "UP-1", 5, "Upstream Ltd", shop.sku)
    alice = issue_operator_key(db)
    order_id, codes = place(client, shop.a.headers, quantity=4)  # all from UP-1
    refund = {"remedy": "refund"}  # a replacement would take a code of its own
    approved = file_claim(client, shop.a.headers, claim_body(order_id, codes[0], **refund))
    rejected = file_claim(client, shop.a.headers, claim_body(order_id, codes[1], **refund))
    decide(client, alice.headers, approved, "approve")
    decide(client, alice.headers, rejected, "reject")
    import_batch(db, vault, "UP-2", 4, "Upstream Ltd", shop.sku)
    place(client, shop.b.headers, quantity=3)  # the last of UP-1, then two of UP-2
    import_batch(db, vault, "LOOSE", 2, None, shop.sku)

    with db.read_session() as session:
        batches = {row.reference: row for row in claims.batch_quality(session)}
        suppliers = stock.supplier_quality(list(batches.values()))

    first = batches["UP-1"]
    assert (first.imported, first.available, first.delivered) == (5, 0, 5)
    assert (first.claimed, first.defective) == (2, 1)  # a rejected claim still counts as claimed
    assert (first.claim_rate, first.defect_rate) == (0.4, 0.2)
    second = batches["UP-2"]
    assert (second.delivered, second.claimed, second.defective, second.available) == (2, 0, 0, 2)
    assert (batches["LOOSE"].delivered, batches["LOOSE"].claim_rate) == (0, 0.0)
    # By name, batches without a supplier last ("Test Supply": the shop's empty first batch).
    assert [row.supplier for row in suppliers] == ["Test Supply", "Upstream Ltd", None]
    _, upstream, loose = suppliers
    assert (upstream.batches, upstream.imported, upstream.delivered) == (2, 9, 7)
    assert (upstream.claimed, upstream.defective, upstream.available) == (2, 1, 2)
    assert upstream.claim_rate == pytest.approx(2 / 7)  # over its codes, not its batches' mean
    assert upstream.defect_rate == pytest.approx(1 / 7)
    assert (loose.batches, loose.imported, loose.delivered) == (1, 2, 0)

    result = factories.run_cli(database_url, "stock", "suppliers", "--json")
    assert result.exit_code == 0, result.stderr
    printed = json.loads(result.stdout)
    assert [(row["supplier"], row["claim_rate"]) for row in printed][1:] == [
        ("Upstream Ltd", 0.2857),
        (None, 0.0),
    ]
    by_batch = json.loads(factories.run_cli(database_url, "stock", "batches", "--json").stdout)
    assert {row["reference"]: row["claim_rate"] for row in by_batch}["UP-1"] == 0.4
    table = factories.run_cli(database_url, "stock", "suppliers")
    assert "(none)" in table.stdout and "28.6 %" in table.stdout

    api = client.get("/api/v1/admin/stock/suppliers", headers=alice.headers).json()["data"]
    assert [(row["supplier"], row["delivered"], row["defective"]) for row in api][1:] == [
        ("Upstream Ltd", 7, 1),
        (None, 0, 0),
    ]
    api_batches = client.get("/api/v1/admin/stock/batches", headers=alice.headers).json()["data"]
    assert {row["reference"]: row["defect_rate"] for row in api_batches}["UP-1"] == 0.2
    hidden = client.get("/api/v1/admin/stock/suppliers", headers=shop.a.headers)
    assert hidden.status_code == 404


def _age_deliveries(db: Database, order_id: str, by: timedelta) -> None:
    """Move an order's codes' delivery back by ``by`` (sales outside the window)."""
    with db.session() as session:
        order_row = session.scalar(select(Order).where(Order.public_id == order_id))
        assert order_row is not None
        item_ids = [item.id for item in order_row.items]
        session.execute(
            update(Code).where(Code.order_item_id.in_(item_ids)).values(delivered_at=utcnow() - by)
        )


def test_low_cover_lists_products_whose_free_stock_lasts_fewer_days_than_asked(
    client: httpx.Client, db: Database, vault: Vault, database_url: str
) -> None:
    shop = factories.make_shop(db, vault, stock_count=0)
    factories.deposit(db, shop.a.id, "5000.00")
    for sku, face in (("psn-us-10", "10"), ("psn-us-20", "20"), ("psn-us-25", "25")):
        factories.add_product(db, sku, face=face, price="1.00")
    import_batch(db, vault, "FAST", 17, None, shop.sku)  # psn-us-50: 14 sold, 3 left
    import_batch(db, vault, "IDLE", 5, None, "psn-us-10")  # nothing sold lately
    import_batch(db, vault, "OLD", 30, None, "psn-us-20")
    import_batch(db, vault, "GONE", 3, None, "psn-us-25")
    assert (
        order(client, shop.a.headers, {"product_id": shop.sku, "quantity": 14}).status_code == 201
    )
    stale = order(client, shop.a.headers, {"product_id": "psn-us-10", "quantity": 2}).json()["id"]
    _age_deliveries(db, stale, timedelta(days=20))  # sold, but before the 14-day window
    assert (
        order(client, shop.a.headers, {"product_id": "psn-us-20", "quantity": 28}).status_code
        == 201
    )
    assert (
        order(client, shop.a.headers, {"product_id": "psn-us-25", "quantity": 1}).status_code == 201
    )
    # psn-us-20: 2 left; a backorder of 3 waits, but only for stock that arrives after it.
    assert backorder(client, shop.a.headers, 3, sku="psn-us-20").json()["status"] == "pending"
    with db.session() as session:
        catalog.retire_product(session, "psn-us-25", "operator:test", utcnow())  # not on sale

    with db.read_session() as session:
        cover = {row.sku: row for row in stock.stock_cover(session, utcnow())}
        low = stock.low_cover(session, utcnow(), days=7)
        shorter = stock.low_cover(session, utcnow(), days=2)
        with pytest.raises(InvalidInputError):
            stock.low_cover(session, utcnow(), days=0)

    assert set(cover) == {shop.sku, "psn-us-10", "psn-us-20"}
    fast = cover[shop.sku]
    assert (fast.free, fast.sold, fast.per_day, fast.cover_days) == (3, 14, 1.0, 3.0)
    assert cover["psn-us-10"].sold == 0 and cover["psn-us-10"].cover_days is None
    assert (cover["psn-us-20"].free, cover["psn-us-20"].cover_days) == (2, 1.0)
    assert [row.sku for row in low] == ["psn-us-20", shop.sku]  # the shortest cover first
    assert [row.sku for row in shorter] == ["psn-us-20"]

    result = factories.run_cli(database_url, "stock", "cover", "--days", "7", "--json")
    assert result.exit_code == 0, result.stderr
    assert [(r["sku"], r["cover_days"]) for r in json.loads(result.stdout)] == [
        ("psn-us-20", 1.0),
        (shop.sku, 3.0),
    ]
    alice = issue_operator_key(db)
    api = client.get("/api/v1/admin/stock/cover", params={"days": 7}, headers=alice.headers)
    assert [row["sku"] for row in api.json()["data"]] == ["psn-us-20", shop.sku]
    refused = client.get("/api/v1/admin/stock/cover", params={"days": 0}, headers=alice.headers)
    assert refused.status_code == 422
