"""Helpers for claims tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select, update

from codeshelf.audit.models import AuditEvent
from codeshelf.claims.models import Claim, ClaimCode
from codeshelf.kit.db import Database
from codeshelf.operators import service as operators
from codeshelf.orders.models import Order
from codeshelf.stock.models import Code
from tests.helpers import order


def reveal(client: httpx.Client, headers: dict[str, str], order_id: str) -> list[str]:
    response = client.get(f"/api/v1/orders/{order_id}/codes", headers=headers)
    assert response.status_code == 200, response.text
    return [row["code"] for row in response.json()["codes"]]


def operator_headers(db: Database, name: str = "alice") -> dict[str, str]:
    with db.session() as session:
        issued = operators.create_key(session, name)
    return {"Authorization": f"Bearer {issued.secret}"}


def approve(client: httpx.Client, headers: dict[str, str], claim_id: str) -> dict[str, Any]:
    response = client.post(
        f"/api/v1/admin/claims/{claim_id}/approve", json={"reason": "verified"}, headers=headers
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def claim_body(order_id: str, *codes: str | dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A claim that is eligible as it stands: an invalid code, its PSN error code, and a
    redemption on a US account just now (the shop's SKU is US)."""
    return {
        "order_id": order_id,
        "codes": list(codes),
        "problem": "invalid",
        "error_code": "WS-37432-9",
        "redemption": {
            "account_region": "US",
            "attempted_at": datetime.now(UTC).isoformat(),
        },
        **extra,
    }


def place(
    client: httpx.Client, headers: dict[str, str], quantity: int = 1, sku: str = "psn-us-50"
) -> tuple[str, list[str]]:
    """Order ``quantity`` codes and reveal them: the order id and the codes."""
    response = order(client, headers, {"product_id": sku, "quantity": quantity})
    assert response.status_code == 201, response.text
    order_id: str = response.json()["id"]
    return order_id, reveal(client, headers, order_id)


def claims_of(client: httpx.Client, headers: dict[str, str]) -> list[dict[str, Any]]:
    """The partner's claims, as GET /api/v1/claims lists them."""
    response = client.get("/api/v1/claims", headers=headers)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


# ---------------------------------------------------------------------------------------------
# Added for the operator-side tests (admin API, CLI, SLA clocks).


@dataclass(frozen=True)
class OperatorKeyHandle:
    key_id: str
    name: str
    secret: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret}"}


def issue_operator_key(db: Database, name: str = "alice") -> OperatorKeyHandle:
    with db.session() as session:
        issued = operators.create_key(session, name)
    return OperatorKeyHandle(issued.key.public_id, issued.key.name, issued.secret)


def file_claim(client: httpx.Client, headers: dict[str, str], body: dict[str, Any]) -> str:
    """File through the partner API; returns the claim id."""
    response = client.post("/api/v1/claims", json=body, headers=headers)
    assert response.status_code == 201, response.text
    claim_id: str = response.json()["id"]
    return claim_id


def load_claim(db: Database, claim_id: str) -> Claim:
    with db.read_session() as session:
        claim = session.scalar(select(Claim).where(Claim.public_id == claim_id))
        assert claim is not None, claim_id
        for claimed in claim.codes:
            _ = claimed.remedy
        return claim


def set_claim(db: Database, claim_id: str, **values: Any) -> None:
    """Change a claim's row directly (to age it: ``due_at=...``)."""
    with db.session() as session:
        session.execute(update(Claim).where(Claim.public_id == claim_id).values(**values))


def claimed_code_states(db: Database, claim_id: str) -> list[str]:
    with db.read_session() as session:
        return list(
            session.scalars(
                select(Code.state)
                .join(ClaimCode, ClaimCode.code_id == Code.id)
                .join(Claim, Claim.id == ClaimCode.claim_id)
                .where(Claim.public_id == claim_id)
                .order_by(ClaimCode.id)
            )
        )


def audit_events(db: Database, subject: str, action: str | None = None) -> list[AuditEvent]:
    with db.read_session() as session:
        query = select(AuditEvent).where(AuditEvent.subject == subject)
        if action is not None:
            query = query.where(AuditEvent.action == action)
        return list(session.scalars(query.order_by(AuditEvent.id)))


def snapshot(db: Database, claim_id: str) -> tuple[Any, ...]:
    """What a refused action must leave unchanged: the claim's row, its codes' states, its
    remedies and the number of audit events about it."""
    claim = load_claim(db, claim_id)
    remedies = sorted(
        (r.kind, r.state, r.amount_minor) for c in claim.codes if (r := c.remedy) is not None
    )
    return (
        claim.status,
        claim.due_at,
        claim.decided_at,
        claim.decision_rule,
        claim.decision_reason,
        claim.remedy,
        tuple(claimed_code_states(db, claim_id)),
        tuple(remedies),
        len(audit_events(db, claim_id)),
    )


def backdate_delivery(db: Database, order_id: str, by: timedelta) -> datetime:
    """Move an order's delivery (and its codes') back by ``by``; returns the new delivered_at.

    The CLI takes --attempted-at in whole seconds, which must not precede the delivery."""
    with db.session() as session:
        order_row = session.scalar(select(Order).where(Order.public_id == order_id))
        assert order_row is not None and order_row.delivered_at is not None
        order_row.delivered_at = order_row.delivered_at - by
        item_ids = [item.id for item in order_row.items]
        session.execute(
            update(Code)
            .where(Code.order_item_id.in_(item_ids))
            .values(delivered_at=order_row.delivered_at)
        )
        return order_row.delivered_at


def cli_time(moment: datetime) -> str:
    """A time as ``codeshelf claims file --attempted-at`` takes it (whole seconds)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")
