"""Every code reveal is written to an append-only audit log; codes are masked elsewhere."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from codeshelf.audit.models import AuditEvent
from codeshelf.kit.db import Database
from tests.fixtures.factories import Shop
from tests.fixtures.http import order


def test_each_reveal_is_audited(client: httpx.Client, shop: Shop, db: Database) -> None:
    placed = order(client, shop.a.headers, {"product_id": "psn-us-50", "quantity": 2}).json()
    for _ in range(2):
        assert client.get(placed["codes_url"], headers=shop.a.headers).status_code == 200
    client.get(placed["codes_url"], headers=shop.b.headers)  # refused: not audited as a reveal
    with db.read_session() as session:
        reveals = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "codes.reveal")
        ).all()
    assert len(reveals) == 2
    for event in reveals:
        assert event.partner_public_id == shop.a.id
        assert event.api_key_public_id == shop.a.key_id
        assert event.subject == placed["id"]
        assert event.count == 2
        assert event.occurred_at.tzinfo is not None


@pytest.mark.parametrize(
    "statement", ["UPDATE audit_events SET count = 0", "DELETE FROM audit_events"]
)
def test_the_audit_log_is_append_only(shop: Shop, db: Database, statement: str) -> None:
    with pytest.raises(DBAPIError, match="append-only"), db.session() as session:
        session.execute(text(statement))
    with db.read_session() as session:
        assert session.scalars(select(AuditEvent)).first() is not None


def test_codes_appear_only_in_the_reveal(client: httpx.Client, shop: Shop, db: Database) -> None:
    placed = order(client, shop.a.headers, {"product_id": "psn-us-50", "quantity": 20})
    texts = [
        placed.text,
        client.get(f"/api/v1/orders/{placed.json()['id']}", headers=shop.a.headers).text,
        client.get("/api/v1/orders", headers=shop.a.headers).text,
        client.get("/api/v1/ledger", headers=shop.a.headers).text,
        client.get("/api/v1/inventory", headers=shop.a.headers).text,
        order(client, shop.a.headers).text,  # out of stock now
    ]
    with db.read_session() as session:
        texts += [repr(event.details) for event in session.scalars(select(AuditEvent))]
    for code in shop.codes:
        compact = code.replace("-", "")
        for blob in texts:
            assert code not in blob and compact not in blob
