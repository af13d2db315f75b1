"""Releasing a batch's quarantine: only codes never delivered go back on sale; codes an escalated
claim quarantined stay so, and delivered codes are never touched. The release is audited, lowers
the stock floor as an import does, and serves what waits for stock, as an import does."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from codeshelf.catalog.models import Product
from codeshelf.invariants import check_all
from codeshelf.kit.db import Database
from codeshelf.kit.vault import Vault
from codeshelf.stock import service as stock
from codeshelf.stock.models import Batch, Code, StockFloor
from tests.fixtures import factories
from tests.fixtures.backorders import backorder
from tests.fixtures.claims import (
    audit_events,
    claim_body,
    claimed_code_states,
    file_claim,
    issue_operator_key,
    place,
)
from tests.fixtures.http import assert_problem

ADMIN = "/api/v1/admin/stock/batches"


def import_batch(db: Database, vault: Vault, reference: str, count: int) -> list[str]:
    codes = [factories.random_code() for _ in range(count)]
    with db.session() as session:
        stock.import_codes(
            session,
            vault,
            sku="psn-us-50",
            batch_reference=reference,
            lines=enumerate(codes, start=1),
            supplier="Upstream Ltd",
        )
    return codes


def states(db: Database, reference: str) -> dict[str, int]:
    with db.read_session() as session:
        rows = session.execute(
            select(Code.state, func.count())
            .join(Batch, Batch.id == Code.batch_id)
            .where(Batch.reference == reference)
            .group_by(Code.state)
        )
        return dict(rows.all())  # type: ignore[arg-type]


def cli_json(database_url: str, *args: str) -> Any:
    result = factories.run_cli(database_url, *args, "--json")
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return json.loads(result.stdout)


def escalate(client: httpx.Client, headers: dict[str, str], claim_id: str) -> None:
    response = client.post(
        f"/api/v1/admin/claims/{claim_id}/escalate", json={"reason": "upstream?"}, headers=headers
    )
    assert response.status_code == 200, response.text


def assert_consistent(db: Database) -> None:
    with db.read_session() as session:
        assert check_all(session) == []


@pytest.fixture
def empty_shop(db: Database, vault: Vault) -> factories.Shop:
    return factories.make_shop(db, vault, stock_count=0)


def test_only_codes_never_delivered_return_to_sale(
    client: httpx.Client,
    db: Database,
    vault: Vault,
    empty_shop: factories.Shop,
    database_url: str,
) -> None:
    shop = empty_shop
    import_batch(db, vault, "SUP-A", 6)
    alice = issue_operator_key(db)
    order_id, [disputed, sold] = place(client, shop.a.headers, quantity=2)
    claim_id = file_claim(
        client,
        shop.a.headers,
        claim_body(order_id, disputed, remedy="replacement", problem="technical_failure"),
    )
    escalate(client, alice.headers, claim_id)
    assert cli_json(database_url, "stock", "quarantine", "--batch", "SUP-A")["quarantined"] == 4
    assert states(db, "SUP-A") == {"delivered": 1, "quarantined": 5}

    released = cli_json(database_url, "stock", "release", "SUP-A")

    assert released == {"batch": "SUP-A", "released": 4, "kept_quarantined": 1}
    assert states(db, "SUP-A") == {"available": 4, "delivered": 1, "quarantined": 1}
    assert claimed_code_states(db, claim_id) == ["quarantined"]  # the claim still owns it
    [audited] = audit_events(db, "SUP-A", "stock.release")
    assert audited.count == 4 and audited.actor == "operator:cli"
    assert audited.details == {"sku": shop.sku, "kept_quarantined": 1}
    inventory = client.get("/api/v1/inventory", headers=shop.b.headers).json()["data"]
    assert inventory[0]["quantity_available"] == 4
    # Whatever is sold next, it is none of the codes already delivered.
    _, next_codes = place(client, shop.b.headers, quantity=4)
    assert not {disputed, sold} & set(next_codes)
    assert_consistent(db)

    # Once the claim is rejected its code goes back to the partner, delivered: never on sale.
    reject = client.post(
        f"/api/v1/admin/claims/{claim_id}/reject",
        json={"reason": "posted online", "rule": "not_covered.public_exposure"},
        headers=alice.headers,
    )
    assert reject.status_code == 200, reject.text
    again = cli_json(database_url, "stock", "release", "SUP-A")
    assert again == {"batch": "SUP-A", "released": 0, "kept_quarantined": 0}
    assert states(db, "SUP-A") == {"delivered": 6}
    assert_consistent(db)


def test_a_release_serves_the_backorders_waiting_for_stock(
    client: httpx.Client,
    db: Database,
    vault: Vault,
    empty_shop: factories.Shop,
    database_url: str,
) -> None:
    shop = empty_shop
    import_batch(db, vault, "SUP-A", 3)
    cli_json(database_url, "stock", "quarantine", "--batch", "SUP-A")
    waiting = backorder(client, shop.a.headers, 2, sku=shop.sku)
    assert waiting.status_code == 201 and waiting.json()["status"] == "pending"

    result = factories.run_cli(database_url, "stock", "release", "SUP-A")

    assert result.exit_code == 0, result.stderr
    assert waiting.json()["id"] in result.stderr  # "backorders delivered: ord_…"
    shown = client.get(f"/api/v1/orders/{waiting.json()['id']}", headers=shop.a.headers)
    assert shown.json()["status"] == "delivered"
    assert states(db, "SUP-A") == {"available": 1, "delivered": 2}
    assert_consistent(db)


def test_the_operator_api_quarantines_and_releases_and_serves_what_waits(
    client: httpx.Client, db: Database, vault: Vault, empty_shop: factories.Shop
) -> None:
    shop = empty_shop
    reference = "SUP/2026/07 #1"  # slashes and spaces: a supplier's reference, verbatim
    import_batch(db, vault, reference, 3)
    alice = issue_operator_key(db, "alice")
    path = f"{ADMIN}/{quote(reference)}"  # "/" stays: the route takes the rest of the path

    pulled = client.post(f"{path}/quarantine", headers=alice.headers)
    assert pulled.status_code == 200, pulled.text
    assert pulled.json() == {"batch": reference, "quarantined": 3}
    waiting = backorder(client, shop.a.headers, 1, sku=shop.sku)
    assert waiting.json()["status"] == "pending"

    released = client.post(f"{path}/release", headers=alice.headers)

    assert released.status_code == 200, released.text
    assert released.json() == {
        "batch": reference,
        "sku": shop.sku,
        "released": 3,
        "kept_quarantined": 0,
        "served": {"claims": [], "expired": [], "filled": [waiting.json()["id"]]},
    }
    assert [e.actor for e in audit_events(db, reference)] == [
        "operator:cli",  # the import (factories import as the CLI does)
        "operator:alice",
        "operator:alice",
    ]
    for action in ("quarantine", "release"):
        missing = client.post(f"{ADMIN}/SUP-NONE/{action}", headers=alice.headers)
        assert_problem(missing, 404, "batch-not-found")
        hidden = client.post(f"{path}/{action}", headers=shop.a.headers)
        assert_problem(hidden, 404, "not-found")
    assert states(db, reference) == {"available": 2, "delivered": 1}
    assert_consistent(db)


def _floor(session: Session) -> int | None:
    return session.scalar(
        select(StockFloor.code_id)
        .join(Product, Product.id == StockFloor.product_id)
        .where(Product.sku == "psn-us-50")
    )


def _first_code(session: Session, reference: str) -> int:
    return int(
        session.scalar(
            select(func.min(Code.id))
            .join(Batch, Batch.id == Code.batch_id)
            .where(Batch.reference == reference)
        )
        or 0
    )


def test_a_release_lowers_the_stock_floor_so_the_released_codes_go_first(
    client: httpx.Client, db: Database, vault: Vault, empty_shop: factories.Shop
) -> None:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite's pick needs no floor")
    old = import_batch(db, vault, "SUP-OLD", 3)
    import_batch(db, vault, "SUP-NEW", 3)
    with db.session() as session:
        stock.quarantine_batch(session, "SUP-OLD")
        stock.floors.advance(session)
        assert _floor(session) == _first_code(session, "SUP-NEW")  # past the quarantined

    with db.session() as session:
        stock.release_batch(session, "SUP-OLD")
        assert (_floor(session) or 0) <= _first_code(session, "SUP-OLD")

    _, [first] = place(client, empty_shop.a.headers)
    assert first == old[0]  # the oldest code again goes first
    assert_consistent(db)


def test_an_unknown_batch_is_refused(database_url: str, db: Database) -> None:
    result = factories.run_cli(database_url, "stock", "release", "SUP-NONE")
    assert result.exit_code == 1 and "no batch SUP-NONE" in result.stderr
