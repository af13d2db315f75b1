"""Strict isolation between the live world and the sandbox, both ways: no id, list, balance,
decision, restock, idempotency key or ledger account of one is reachable from the other, nor
from another partner's sandbox."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from codeshelf.kit.db import Database
from codeshelf.kit.settings import Settings
from codeshelf.kit.vault import Vault
from codeshelf.orders.service import fulfilment
from codeshelf.partners.models import Partner
from codeshelf.wallet.models import Account, LedgerTransaction, Posting
from tests.fixtures import factories
from tests.fixtures.claims import claim_body, file_claim, reveal
from tests.fixtures.factories import PartnerHandle, Shop, run_cli
from tests.fixtures.http import assert_problem, balance, order
from tests.fixtures.sandbox import (
    assert_books_balance,
    get_json,
    held,
    ids,
    issue_sandbox_key,
    live_stock,
    top_up,
)
from tests.fixtures.servers import serve

SANDBOX_PATHS = {
    "/api/v1/sandbox/deposits",
    "/api/v1/sandbox/restock",
    "/api/v1/sandbox/orders/{order_id}/review",
    "/api/v1/sandbox/webhooks/trigger",
}
LISTS = (
    "/api/v1/orders",
    "/api/v1/events",
    "/api/v1/ledger",
    "/api/v1/webhook-endpoints",
    "/api/v1/claims",
)


@pytest.fixture
def api(settings: Settings, db: Database) -> Iterator[httpx.Client]:
    """The API, allowing webhook endpoints on loopback (none is ever sent to here)."""
    allowing = settings.model_copy(update={"webhook_allow_private": True})
    with serve(allowing, db) as http:
        yield http


@pytest.fixture
def sandbox(db: Database, shop: Shop) -> PartnerHandle:
    return issue_sandbox_key(db, shop.a.id)


def placed(client: httpx.Client, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = order(client, headers, {"product_id": "psn-us-50", "quantity": 1, **body})
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def hold_live_orders_for_review(database_url: str, partner_id: str) -> None:
    result = run_cli(database_url, "partner", "limits", partner_id, "--quantity-over", "2")
    assert result.exit_code == 0, result.stderr


def sandbox_calls(order_id: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        ("/api/v1/sandbox/deposits", {"amount": "100.00", "currency": "USD"}),
        ("/api/v1/sandbox/restock", {}),
        (f"/api/v1/sandbox/orders/{order_id}/review", {"decision": "approve"}),
        ("/api/v1/sandbox/webhooks/trigger", {"event": "balance.low"}),
    ]


def test_a_live_key_is_refused_on_every_sandbox_endpoint(
    api: httpx.Client, database_url: str, db: Database, shop: Shop, sandbox: PartnerHandle
) -> None:
    spec = get_json(api, "/api/v1/openapi.json", {})
    assert {p for p in spec["paths"] if p.startswith("/api/v1/sandbox/")} == SANDBOX_PATHS

    hold_live_orders_for_review(database_url, shop.a.id)
    in_review = placed(api, shop.a.headers, quantity=3)
    assert in_review["waiting_for"] == "review"
    short = placed(api, shop.b.headers, quantity=21, allow_backorder=True)
    assert short["waiting_for"] == "stock"
    top_up(api, sandbox.headers, "100.00")
    test_review = placed(api, sandbox.headers, client_order_id="test_review_1")
    before = live_stock(db)

    for live in (shop.a, shop.b):
        calls = sandbox_calls(in_review["id"]) + [
            (f"/api/v1/sandbox/orders/{order_id}/review", {"decision": "reject"})
            for order_id in (short["id"], test_review["id"])
        ]
        for path, body in calls:
            response = api.post(path, json=body, headers=live.headers)
            problem = assert_problem(response, 403, "sandbox-only")
            assert "cs_test_" in problem["detail"]
    assert balance(api, shop.a.headers) == "860.50"
    assert held(api, shop.a.headers) == "139.50"
    assert balance(api, shop.b.headers) == "23.50"
    assert held(api, shop.b.headers) == "976.50"
    assert get_json(api, f"/api/v1/orders/{in_review['id']}", shop.a.headers)["status"] == (
        "pending"
    )
    assert get_json(api, f"/api/v1/orders/{short['id']}", shop.b.headers)["status"] == "pending"
    assert get_json(api, f"/api/v1/orders/{test_review['id']}", sandbox.headers)["waiting_for"] == (
        "review"
    )
    assert get_json(api, "/api/v1/events", shop.a.headers)["data"][-1]["type"] == (
        "order.review_required"
    )
    assert live_stock(db) == before
    assert balance(api, sandbox.headers) == "53.50"
    # Without any key, the sandbox is as closed as the rest of the API.
    for path, body in sandbox_calls(test_review["id"]):
        assert_problem(api.post(path, json=body), 401, "unauthorized")
    assert_books_balance(db)


def test_an_order_id_of_one_world_is_not_found_in_the_other(
    api: httpx.Client, db: Database, shop: Shop, sandbox: PartnerHandle
) -> None:
    other_sandbox = issue_sandbox_key(db, shop.b.id)
    top_up(api, sandbox.headers, "100.00")
    top_up(api, other_sandbox.headers, "100.00")
    live = placed(api, shop.a.headers, client_order_id="PO-live")
    test = placed(api, sandbox.headers, client_order_id="PO-test")
    others = placed(api, other_sandbox.headers, client_order_id="PO-other")
    owners = {live["id"]: shop.a, test["id"]: sandbox, others["id"]: other_sandbox}
    everyone = [shop.a, shop.b, sandbox, other_sandbox]
    for order_id, owner in owners.items():
        assert get_json(api, f"/api/v1/orders/{order_id}", owner.headers)["id"] == order_id
        for stranger in everyone:
            if stranger is owner:
                continue
            for path in (f"/api/v1/orders/{order_id}", f"/api/v1/orders/{order_id}/codes"):
                assert_problem(api.get(path, headers=stranger.headers), 404, "order-not-found")
    by_client_order_id = {"PO-live": live, "PO-test": test, "PO-other": others}
    for stranger in everyone:
        for client_order_id, mine in by_client_order_id.items():
            found = get_json(
                api, "/api/v1/orders", stranger.headers, client_order_id=client_order_id
            )["data"]
            expected = [mine["id"]] if owners[mine["id"]] is stranger else []
            assert [o["id"] for o in found] == expected
    # A claim cannot name another world's order either.
    codes = reveal(api, shop.a.headers, live["id"])
    for claimant, order_id in ((sandbox, live["id"]), (shop.a, test["id"])):
        body = claim_body(order_id, codes[0])
        response = api.post("/api/v1/claims", json=body, headers=claimant.headers)
        assert_problem(response, 404, "order-not-found")
    assert_books_balance(db)


def test_no_list_shows_the_other_worlds_rows(
    api: httpx.Client, db: Database, shop: Shop, sandbox: PartnerHandle
) -> None:
    other_sandbox = issue_sandbox_key(db, shop.b.id)
    worlds = {"live": shop.a, "test": sandbox, "other": other_sandbox}
    for name, who in worlds.items():
        if name != "live":
            top_up(api, who.headers, "300.00")
        for suffix in ("1", "fail"):
            placed(api, who.headers, client_order_id=f"{name}-{suffix}")
        placed(api, who.headers, client_order_id="test_fail_x")
        endpoint = api.post(
            "/api/v1/webhook-endpoints",
            json={"url": f"http://127.0.0.1:9/{name}"},
            headers=who.headers,
        )
        assert endpoint.status_code == 201, endpoint.text
    sample = api.post(
        "/api/v1/sandbox/webhooks/trigger", json={"event": "claim.updated"}, headers=sandbox.headers
    )
    assert sample.status_code == 202, sample.text
    live_orders = get_json(api, "/api/v1/orders", shop.a.headers)["data"]
    claim_id = file_claim(
        api,
        shop.a.headers,
        claim_body(live_orders[-1]["id"], reveal(api, shop.a.headers, live_orders[-1]["id"])[0]),
    )

    seen: dict[str, dict[str, set[str]]] = {
        name: {path: ids(get_json(api, path, who.headers)["data"]) for path in LISTS}
        for name, who in worlds.items()
    }
    for path in LISTS:
        rows = [seen[name][path] for name in worlds]
        assert sum(len(r) for r in rows) == len(set().union(*rows)), path
    for name in worlds:
        assert len(seen[name]["/api/v1/orders"]) == 3
        assert len(seen[name]["/api/v1/webhook-endpoints"]) == 1
    assert seen["live"]["/api/v1/claims"] == {claim_id}
    assert seen["test"]["/api/v1/claims"] == seen["other"]["/api/v1/claims"] == set()
    assert len(seen["test"]["/api/v1/events"]) == 2 * 3 + 2 + 1  # delivered, failed, sample
    assert len(seen["other"]["/api/v1/events"]) == 2 * 3 + 2
    live_feed = get_json(api, "/api/v1/events", shop.a.headers)["data"]
    assert sum(e["type"].startswith("order.") for e in live_feed) == 3 * 3
    assert {e["type"] for e in live_feed if not e["type"].startswith("order.")} <= {"claim.updated"}
    for stranger in (sandbox, other_sandbox):
        assert_problem(
            api.get(f"/api/v1/claims/{claim_id}", headers=stranger.headers), 404, "claim-not-found"
        )
    # Each key's events are its own: every order event names one of its own orders.
    for name, who in worlds.items():
        feed = get_json(api, "/api/v1/events", who.headers)["data"]
        named = {e["payload"]["order_id"] for e in feed if e["type"].startswith("order.")}
        assert named <= seen[name]["/api/v1/orders"], name
    # Another world's ids are no cursors here.
    live_cursors = {
        "/api/v1/orders": ("cursor", live_orders[0]["id"]),
        "/api/v1/events": ("after", next(iter(seen["live"]["/api/v1/events"]))),
        "/api/v1/ledger": ("cursor", next(iter(seen["live"]["/api/v1/ledger"]))),
        "/api/v1/claims": ("cursor", claim_id),
    }
    test_event = next(iter(seen["test"]["/api/v1/events"]))
    for path, (name, value) in live_cursors.items():
        for stranger in (sandbox, other_sandbox):
            response = api.get(path, params={name: value}, headers=stranger.headers)
            assert_problem(response, 400, "invalid-cursor")
    response = api.get("/api/v1/events", params={"after": test_event}, headers=shop.a.headers)
    assert_problem(response, 400, "invalid-cursor")
    # Balances and ledgers.
    assert get_json(api, "/api/v1/balance", shop.a.headers)["data"] == [
        {"amount": "860.50", "currency": "USD"}
    ]
    for who in (sandbox, other_sandbox):
        assert get_json(api, "/api/v1/balance", who.headers)["data"] == [
            {"amount": "207.00", "currency": "USD"}
        ]
        ledger = get_json(api, "/api/v1/ledger", who.headers)["data"]
        assert [e["type"] for e in ledger] == ["deposit", "order", "order"]
    live_ledger = get_json(api, "/api/v1/ledger", shop.a.headers)["data"]
    assert [e["type"] for e in live_ledger] == ["deposit", "order", "order", "order"]
    # Endpoints are named by id: another world's is not found.
    live_endpoint = next(iter(seen["live"]["/api/v1/webhook-endpoints"]))
    for stranger in (sandbox, other_sandbox):
        for path in (f"/api/v1/webhook-endpoints/{live_endpoint}",):
            assert_problem(
                api.get(path, headers=stranger.headers), 404, "webhook-endpoint-not-found"
            )
    test_endpoint = next(iter(seen["test"]["/api/v1/webhook-endpoints"]))
    for stranger in (shop.a, other_sandbox):
        response = api.delete(
            f"/api/v1/webhook-endpoints/{test_endpoint}", headers=stranger.headers
        )
        assert_problem(response, 404, "webhook-endpoint-not-found")
    assert ids(get_json(api, "/api/v1/webhook-endpoints", sandbox.headers)["data"]) == {
        test_endpoint
    }
    assert_books_balance(db)


def test_sandbox_top_ups_and_orders_never_touch_live_money(
    api: httpx.Client, db: Database, shop: Shop, sandbox: PartnerHandle
) -> None:
    top_up(api, sandbox.headers, "1000000.00")
    placed(api, sandbox.headers, quantity=100)
    assert balance(api, sandbox.headers) == "995350.00"
    assert balance(api, shop.a.headers) == "1000.00"
    assert held(api, shop.a.headers) == "0.00"
    assert [e["type"] for e in get_json(api, "/api/v1/ledger", shop.a.headers)["data"]] == [
        "deposit"
    ]
    # The live wallet pays for live orders only.
    placed(api, shop.a.headers)
    assert balance(api, shop.a.headers) == "953.50"
    assert balance(api, sandbox.headers) == "995350.00"
    assert_books_balance(db)


def test_the_sandbox_cannot_decide_live_reviews_nor_restock_live_backorders(
    api: httpx.Client,
    database_url: str,
    db: Database,
    vault: Vault,
    shop: Shop,
    sandbox: PartnerHandle,
) -> None:
    other_sandbox = issue_sandbox_key(db, shop.b.id)
    hold_live_orders_for_review(database_url, shop.a.id)
    in_review = placed(api, shop.a.headers, quantity=3)
    assert in_review["waiting_for"] == "review"
    backorder = placed(api, shop.b.headers, quantity=21, allow_backorder=True)
    assert backorder["waiting_for"] == "stock"
    top_up(api, sandbox.headers, "500.00")
    top_up(api, other_sandbox.headers, "500.00")
    test_backorder = placed(api, sandbox.headers, client_order_id="test_backorder")
    test_review = placed(api, sandbox.headers, client_order_id="test_review")
    others_backorder = placed(api, other_sandbox.headers, client_order_id="test_backorder_b")
    before = live_stock(db)
    live_inventory = get_json(api, "/api/v1/inventory", shop.b.headers)["data"]
    # The live backorder waits for stock that arrives after it: the 20 in stock stay on sale.
    assert live_inventory[0]["quantity_available"] == 20

    review_url = "/api/v1/sandbox/orders/{}/review"
    for who, order_id in (
        (sandbox, in_review["id"]),
        (other_sandbox, in_review["id"]),
        (other_sandbox, test_review["id"]),
    ):
        for decision in ("approve", "reject"):
            response = api.post(
                review_url.format(order_id), json={"decision": decision}, headers=who.headers
            )
            assert_problem(response, 404, "order-not-found")
    assert get_json(api, f"/api/v1/orders/{in_review['id']}", shop.a.headers)["waiting_for"] == (
        "review"
    )
    assert get_json(api, f"/api/v1/orders/{test_review['id']}", sandbox.headers)["waiting_for"] == (
        "review"
    )

    restocked = api.post("/api/v1/sandbox/restock", headers=sandbox.headers)
    assert restocked.status_code == 200, restocked.text
    assert restocked.json() == {"delivered_order_ids": [test_backorder["id"]]}
    assert get_json(api, f"/api/v1/orders/{backorder['id']}", shop.b.headers)["waiting_for"] == (
        "stock"
    )
    assert get_json(api, f"/api/v1/orders/{others_backorder['id']}", other_sandbox.headers)[
        "waiting_for"
    ] == ("stock")
    assert live_stock(db) == before
    assert get_json(api, "/api/v1/inventory", shop.b.headers)["data"] == live_inventory
    assert held(api, shop.b.headers) == "976.50"
    assert_books_balance(db)

    # The operator's queue holds the live order only, and live restocking is untouched.
    with db.session() as session:
        queue = [o.public_id for o in fulfilment.review_queue(session)]
    assert queue == [in_review["id"]]
    factories.load_codes(db, vault, "psn-us-50", 1)
    with db.session() as session:
        assert fulfilment.fill_backorders(session) == [backorder["id"]]
    assert get_json(api, f"/api/v1/orders/{backorder['id']}", shop.b.headers)["status"] == (
        "delivered"
    )
    assert get_json(api, f"/api/v1/orders/{others_backorder['id']}", other_sandbox.headers)[
        "waiting_for"
    ] == ("stock")
    assert_books_balance(db)


def test_client_order_ids_and_idempotency_keys_do_not_collide_across_worlds(
    api: httpx.Client, db: Database, shop: Shop, sandbox: PartnerHandle
) -> None:
    top_up(api, sandbox.headers, "500.00")
    key = str(uuid.uuid4())
    body = {"product_id": "psn-us-50", "quantity": 2, "client_order_id": "PO-1042"}
    live = order(api, shop.a.headers, body, key=key)
    test = order(api, sandbox.headers, body, key=key)
    for response in (live, test):
        assert response.status_code == 201, response.text
        assert "idempotent-replayed" not in response.headers
    assert live.json()["id"] != test.json()["id"]
    assert test.json()["status"] == "delivered"
    # A retry replays each world's own answer.
    for who, first in ((shop.a, live), (sandbox, test)):
        retry = order(api, who.headers, body, key=key)
        assert retry.status_code == 201
        assert retry.headers["idempotent-replayed"] == "true"
        assert retry.json()["id"] == first.json()["id"]
    # Within one world the client_order_id is still unique.
    for who, first in ((shop.a, live), (sandbox, test)):
        again = order(api, who.headers, body)
        problem = assert_problem(again, 409, "duplicate-client-order-id")
        assert problem["existing_order_id"] == first.json()["id"]
    # The same key with another body is a reuse in the sandbox too, but only there.
    other = {"product_id": "psn-us-50", "quantity": 1}
    assert_problem(order(api, sandbox.headers, other, key=key), 422, "idempotency-key-reused")
    other_sandbox = issue_sandbox_key(db, shop.b.id)
    top_up(api, other_sandbox.headers, "100.00")
    fresh = order(api, other_sandbox.headers, other, key=key)
    assert fresh.status_code == 201 and "idempotent-replayed" not in fresh.headers
    assert balance(api, shop.a.headers) == "907.00"
    assert balance(api, sandbox.headers) == "407.00"
    assert_books_balance(db)


def _postings_by_account(db: Database, partner_ids: list[str]) -> dict[str, dict[str, int]]:
    """For each partner: the sum of postings per account code over its own transactions."""
    result: dict[str, dict[str, int]] = {}
    with db.read_session() as session:
        for pid in partner_ids:
            own = (
                select(Posting.transaction_id)
                .join(Account, Account.id == Posting.account_id)
                .join(Partner, Partner.id == Account.partner_id)
                .where(Partner.public_id == pid)
            )
            rows = session.execute(
                select(Account.code, Posting.amount_minor)
                .join(Posting, Posting.account_id == Account.id)
                .join(LedgerTransaction, LedgerTransaction.id == Posting.transaction_id)
                .where(LedgerTransaction.id.in_(own))
            )
            sums: dict[str, int] = {}
            for code, amount in rows:
                sums[code] = sums.get(code, 0) + amount
            result[pid] = sums
    return result


def test_sandbox_money_posts_to_its_own_system_accounts(
    api: httpx.Client, db: Database, shop: Shop, sandbox: PartnerHandle
) -> None:
    top_up(api, sandbox.headers, "500.00")
    placed(api, sandbox.headers, quantity=2)  # 93.00
    waiting = placed(api, sandbox.headers, client_order_id="test_backorder-1")  # 46.50
    rejected = placed(api, sandbox.headers, client_order_id="test_review-1")  # released
    placed(api, sandbox.headers, client_order_id="test_fail-1")  # nothing
    assert api.post("/api/v1/sandbox/restock", headers=sandbox.headers).json() == {
        "delivered_order_ids": [waiting["id"]]
    }
    decided = api.post(
        f"/api/v1/sandbox/orders/{rejected['id']}/review",
        json={"decision": "reject"},
        headers=sandbox.headers,
    )
    assert decided.status_code == 200, decided.text
    placed(api, shop.a.headers, quantity=1)  # live: 46.50

    sums = _postings_by_account(db, [shop.a.id, sandbox.id, shop.b.id])
    assert sums[shop.b.id] == {f"wallet:{shop.b.id}:USD": 100000, "funding:USD": -100000}
    assert sums[sandbox.id] == {
        f"wallet:{sandbox.id}:USD": 50000 - 9300 - 4650,
        f"held:{sandbox.id}:USD": 0,
        "funding:test:USD": -50000,
        "sales:test:USD": 9300 + 4650,
    }
    assert sums[shop.a.id] == {
        f"wallet:{shop.a.id}:USD": 100000 - 4650,
        "funding:USD": -100000,
        "sales:USD": 4650,
    }
    with db.read_session() as session:
        system = {
            code: sum(
                session.scalars(
                    select(Posting.amount_minor)
                    .join(Account, Account.id == Posting.account_id)
                    .where(Account.code == code)
                )
            )
            for code in ("sales:USD", "funding:USD", "sales:test:USD", "funding:test:USD")
        }
    # Live sales are the one live order; the live funding the two live deposits.
    assert system == {
        "sales:USD": 4650,
        "funding:USD": -200000,
        "sales:test:USD": 13950,
        "funding:test:USD": -50000,
    }
    assert balance(api, sandbox.headers) == "360.50"
    assert balance(api, shop.a.headers) == "953.50"
    assert_books_balance(db)
