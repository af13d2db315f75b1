"""When stock arrives, whichever way it comes, the worker serves those waiting for it: approved
claims owed replacement codes first, then backorders, first come, first served."""

from __future__ import annotations

import httpx

from codeshelf.kit.db import Database
from codeshelf.kit.vault import Vault
from tests.fixtures import factories
from tests.fixtures.claims import (
    approve,
    audit_events,
    claim_body,
    file_claim,
    issue_operator_key,
    load_claim,
    place,
    reveal,
)
from tests.fixtures.http import order


def _claim_waiting_for_a_replacement(
    client: httpx.Client, db: Database, vault: Vault
) -> tuple[factories.Shop, str, list[str]]:
    """A shop whose two codes are both sold; a replacement claim on one, approved."""
    shop = factories.make_shop(db, vault, stock_count=2)
    alice = issue_operator_key(db)
    order_id, codes = place(client, shop.a.headers, quantity=2)
    claim_id = file_claim(client, shop.a.headers, claim_body(order_id, codes[0]))
    assert approve(client, alice.headers, claim_id)["status"] == "approved"
    return shop, claim_id, codes


def test_the_worker_serves_a_claim_waiting_for_stock_that_arrived_without_an_import(
    client: httpx.Client, db: Database, vault: Vault, database_url: str
) -> None:
    shop, claim_id, sold = _claim_waiting_for_a_replacement(client, db, vault)
    fresh = factories.load_codes(db, vault, shop.sku, 1)  # not through `codeshelf stock import`
    assert load_claim(db, claim_id).status == "approved"

    result = factories.run_cli(database_url, "worker", "--once")

    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert claim_id in result.stderr
    claim = client.get(f"/api/v1/claims/{claim_id}", headers=shop.a.headers).json()
    assert claim["status"] == "resolved"
    [replacement] = claim["replacement_order_ids"]
    assert reveal(client, shop.a.headers, replacement) == fresh
    assert fresh[0] not in sold
    [resolved] = audit_events(db, claim_id, "claim.resolve")
    assert resolved.actor == "system:worker"
    assert factories.run_cli(database_url, "ledger", "check").exit_code == 0


def test_claims_are_served_before_backorders_from_the_same_stock(
    client: httpx.Client, db: Database, vault: Vault, database_url: str
) -> None:
    shop, claim_id, _ = _claim_waiting_for_a_replacement(client, db, vault)
    waiting = order(
        client, shop.b.headers, {"product_id": shop.sku, "quantity": 1, "allow_backorder": True}
    )
    assert waiting.status_code == 201 and waiting.json()["status"] == "pending"
    factories.load_codes(db, vault, shop.sku, 1)  # one code, owed to the claim first

    assert factories.run_cli(database_url, "worker", "--once").exit_code == 0
    assert load_claim(db, claim_id).status == "resolved"
    backorder = client.get(f"/api/v1/orders/{waiting.json()['id']}", headers=shop.b.headers)
    assert backorder.json()["status"] == "pending"

    factories.load_codes(db, vault, shop.sku, 1)  # the next code goes to the backorder
    assert factories.run_cli(database_url, "worker", "--once").exit_code == 0
    backorder = client.get(f"/api/v1/orders/{waiting.json()['id']}", headers=shop.b.headers)
    assert backorder.json()["status"] == "delivered"
    assert factories.run_cli(database_url, "ledger", "check").exit_code == 0
