"""The Orders page: filters (status, client_order_id, days) and its CSV, with no codes in it."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import update

from codeshelf.kit.db import Database
from codeshelf.kit.vault import Vault
from codeshelf.orders.models import Order
from tests.fixtures.browser import Portal, add_member
from tests.fixtures.factories import Shop
from tests.fixtures.http import order


def test_orders_filter_by_day_and_client_order_id_and_download_as_csv(
    portal: Portal, shop: Shop, db: Database, vault: Vault, client: httpx.Client
) -> None:
    old = order(client, shop.a.headers, {"product_id": shop.sku, "quantity": 1}).json()["id"]
    new = order(
        client, shop.a.headers, {"product_id": shop.sku, "quantity": 2, "client_order_id": "PO-7"}
    ).json()["id"]
    with db.session() as session:
        three_days_ago = datetime.now(UTC) - timedelta(days=3)
        session.execute(
            update(Order).where(Order.public_id == old).values(created_at=three_days_ago)
        )
    portal.enter_as(db, vault, add_member(db, vault, shop.a.id, "buyer", "buy@acme.example"))
    today = datetime.now(UTC).date().isoformat()
    page = portal.go(f"/account/orders?since={today}")
    assert new in page.content() and old not in page.content()
    page = portal.go("/account/orders?client_order_id=PO-7")
    assert new in page.content() and old not in page.content()
    portal.shot("orders")

    with page.expect_download() as download:
        portal.go("/account/orders").get_by_role("link", name="Download orders (CSV)").click()
    text = download.value.path().read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["id"], r["quantity"], r["total"]) for r in rows] == [
        (new, "2", "93.00"),
        (old, "1", "46.50"),
    ]
    assert rows[0]["client_order_id"] == "PO-7"
    assert not any(code in text for code in shop.codes)
    until = (datetime.now(UTC) - timedelta(days=2)).date().isoformat()
    older = portal.page.request.get(f"{portal.url}/account/orders?until={until}&format=csv")
    assert [r["id"] for r in csv.DictReader(io.StringIO(older.text()))] == [old]
