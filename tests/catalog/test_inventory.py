"""GET /inventory: live stock per product with this partner's price."""

from __future__ import annotations

import httpx

from codeshelf.kit.db import Database
from tests.fixtures import factories
from tests.fixtures.factories import Shop
from tests.fixtures.http import order


def test_inventory_shows_live_quantities_and_sold_out_products(
    client: httpx.Client, shop: Shop, db: Database
) -> None:
    factories.add_product(
        db,
        "psn-tr-250",
        region="TR",
        face="250",
        currency="TRY",
        price="6.90",
        price_currency="USD",
    )
    order(client, shop.a.headers, {"product_id": "psn-us-50", "quantity": 5})
    items = {
        row["product_id"]: row
        for row in client.get("/api/v1/inventory", headers=shop.b.headers).json()["data"]
    }
    assert items["psn-us-50"]["quantity_available"] == 15
    assert items["psn-us-50"]["available"] is True
    sold_out = items["psn-tr-250"]
    assert sold_out["quantity_available"] == 0 and sold_out["available"] is False
    assert sold_out["denomination"] == {"amount": "250.00", "currency": "TRY"}
    assert sold_out["price"] == {"amount": "6.90", "currency": "USD"}
    assert sold_out["region"] == "TR" and sold_out["platform"] == "psn"
