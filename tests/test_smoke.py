from __future__ import annotations

import httpx

from tests.fixtures.factories import Shop


def test_inventory_lists_the_product(client: httpx.Client, shop: Shop) -> None:
    response = client.get("/api/v1/inventory", headers=shop.a.headers)
    assert response.status_code == 200
    [item] = response.json()["data"]
    assert item["product_id"] == "psn-us-50"
    assert item["quantity_available"] == 20
