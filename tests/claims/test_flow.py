"""The claim lifecycle end to end over HTTP, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from codeshelf.kit.db import Database
from codeshelf.kit.vault import Vault
from tests.fixtures import factories
from tests.fixtures.claims import approve, operator_headers, reveal
from tests.fixtures.http import balance, order


def _claim_body(order_id: str, code: str, **extra: object) -> dict[str, object]:
    return {
        "order_id": order_id,
        "codes": [code],
        "problem": "invalid",
        "error_code": "WS-37432-9",
        "redemption": {
            "account_region": "US",
            "attempted_at": datetime.now(UTC).isoformat(),
        },
        **extra,
    }


def test_refund_claim_end_to_end(
    client: httpx.Client, db: Database, vault: Vault, shop: factories.Shop, database_url: str
) -> None:
    placed = order(client, shop.a.headers).json()
    code = reveal(client, shop.a.headers, placed["id"])[0]
    filed = client.post(
        "/api/v1/claims",
        json=_claim_body(placed["id"], code, remedy="refund"),
        headers=shop.a.headers,
    )
    assert filed.status_code == 201, filed.text
    claim = filed.json()
    assert claim["status"] == "submitted"
    assert claim["codes"][0]["verdict"] == "eligible"
    assert claim["codes"][0]["rule"] == "covered.invalid"
    assert claim["policy_version"] == "1.1"
    assert balance(client, shop.a.headers) == "953.50"
    approved = approve(client, operator_headers(db), claim["id"])
    assert approved["status"] == "resolved", approved
    assert approved["codes"][0]["remedy"]["refunded"] == {"amount": "46.50", "currency": "USD"}
    assert balance(client, shop.a.headers) == "1000.00"
    seen = client.get(f"/api/v1/claims/{claim['id']}", headers=shop.a.headers).json()
    assert "refunded" in seen["customer_message"]
    assert factories.run_cli(database_url, "ledger", "check").exit_code == 0


def test_replacement_claim_delivers_a_new_code(
    client: httpx.Client, db: Database, vault: Vault, shop: factories.Shop, database_url: str
) -> None:
    placed = order(client, shop.a.headers).json()
    code = reveal(client, shop.a.headers, placed["id"])[0]
    claim = client.post(
        "/api/v1/claims", json=_claim_body(placed["id"], code), headers=shop.a.headers
    ).json()
    approved = approve(client, operator_headers(db), claim["id"])
    assert approved["status"] == "resolved", approved
    [replacement_order] = approved["replacement_order_ids"]
    new_codes = reveal(client, shop.a.headers, replacement_order)
    assert len(new_codes) == 1 and new_codes[0] != code
    assert balance(client, shop.a.headers) == "953.50"
    assert factories.run_cli(database_url, "ledger", "check").exit_code == 0
