"""What only sandbox partners may do: top up test funds, restock, decide their own reviews,
and have any webhook sent on demand."""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy.orm import Session

from codeshelf.kit.clock import utcnow
from codeshelf.kit.errors import DomainError, InvalidInputError
from codeshelf.kit.ids import public_id
from codeshelf.kit.money import Money
from codeshelf.orders.models import Order
from codeshelf.orders.service import fulfilment
from codeshelf.partners.models import Partner
from codeshelf.wallet import service as wallet
from codeshelf.webhooks import service as webhooks

MAX_TOP_UP_MINOR = 100_000_000  # 1,000,000.00 per call in a two-decimal currency


class SandboxOnlyError(DomainError):
    slug = "sandbox-only"


def require_sandbox(partner: Partner) -> None:
    if not partner.is_sandbox:
        raise SandboxOnlyError(
            "this endpoint works only with a sandbox key (cs_test_…); live money and stock "
            "cannot be changed through it"
        )


def top_up(session: Session, partner: Partner, money: Money) -> wallet.DepositResult:
    require_sandbox(partner)
    if not 0 < money.minor <= MAX_TOP_UP_MINOR:
        raise InvalidInputError(
            f"a test top-up is positive and at most {Money(MAX_TOP_UP_MINOR, money.currency)}",
            pointer="#/amount",
        )
    reference = f"sandbox:{secrets.token_hex(12)}"
    return wallet.deposit(session, partner, money, reference, actor=f"partner:{partner.public_id}")


def restock(session: Session, partner: Partner) -> list[str]:
    """Deliver the partner's waiting sandbox backorders, as new stock would."""
    require_sandbox(partner)
    return fulfilment.fill_backorders(session, utcnow(), sandbox_partner_id=partner.id)


def decide_review(session: Session, partner: Partner, order_id: str, approve: bool) -> Order:
    """Play the operator for one of the partner's own sandbox orders held for review."""
    require_sandbox(partner)
    return fulfilment.decide_review(
        session,
        order_id,
        approve=approve,
        actor=f"partner:{partner.public_id}",
        reason="sandbox rehearsal",
        now=utcnow(),
        partner_id=partner.id,
    )


def trigger(session: Session, partner: Partner, event_type: str) -> str:
    """Emit a sample event of ``event_type`` (marked ``sample``) to the partner's endpoints."""
    require_sandbox(partner)
    if event_type not in webhooks.EVENT_TYPES:
        raise InvalidInputError(
            f"event must be one of {', '.join(webhooks.EVENT_TYPES)}", pointer="#/event"
        )
    return webhooks.emit(session, partner.id, event_type, _sample(event_type))


def _sample(event_type: str) -> dict[str, Any]:
    if event_type.startswith("order."):
        status = {
            "order.created": "pending",
            "order.review_required": "pending",
            "order.paid": "paid",
            "order.fulfilled": "delivered",
            "order.failed": "failed",
        }[event_type]
        return {
            "sample": True,
            "order_id": public_id("ord"),
            "client_order_id": "sample",
            "status": status,
            "review_required": event_type == "order.review_required",
        }
    if event_type == "claim.updated":
        return {"sample": True, "claim_id": public_id("clm"), "status": "triaged"}
    return {"sample": True, "balance": {"amount": "12.00", "currency": "USD"}}
