"""The operator's partners API under /api/v1/admin/partners, for operator keys only: the list
and detail the console shows, opening a partner (its owner invited), and its prices and limits.
Each change is the same service call the CLI and the console make, as ``operator:<key name>``.
"""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy.orm import Session

from codeshelf.api.deps import OperatorDep, Services, ServicesDep
from codeshelf.catalog import service as catalog
from codeshelf.dossier import service
from codeshelf.dossier.schemas import (
    InvitationOut,
    MoneyIn,
    OpenedPartnerOut,
    PartnerDetailOut,
    PartnerOpenIn,
    PartnerPage,
    PartnerPriceOut,
    PartnerSummaryOut,
    PriceIn,
    RateLimitIn,
    RateLimitOut,
    ReviewLimitsIn,
    ReviewLimitsOut,
)
from codeshelf.kit.clock import utcnow
from codeshelf.kit.errors import InvalidInputError
from codeshelf.kit.money import InvalidMoneyError, Money
from codeshelf.kit.schemas import MoneyOut
from codeshelf.members.service import onboarding
from codeshelf.operators.service import actor_name
from codeshelf.partners import service as partners

router = APIRouter(prefix="/admin", tags=["admin: partners"])


def _detail(services: Services, session: Session, partner_id: str) -> PartnerDetailOut:
    detail = service.partner_detail(session, partner_id, utcnow())
    return PartnerDetailOut.of(detail, services.settings.rate_limit_per_minute)


@router.get("/partners", response_model=PartnerPage, summary="List partners")
def partner_list(operator: OperatorDep, services: ServicesDep) -> PartnerPage:
    """Every live partner, oldest first: balances, open claims, keys, deposits waiting."""
    with services.db.read_session() as session:
        found = service.partner_list(session)
    return PartnerPage(data=[PartnerSummaryOut.of(summary) for summary in found])


@router.post(
    "/partners",
    response_model=OpenedPartnerOut,
    status_code=201,
    summary="Open a partner and invite its owner",
)
def open_partner(
    body: PartnerOpenIn, operator: OperatorDep, services: ServicesDep
) -> OpenedPartnerOut:
    """A new partner with no API key yet (its owner makes them in the portal), and the owner's
    one-time invitation link (valid 72 hours): pass it on, it is not shown again."""
    with services.db.session() as session:
        opened = onboarding.open_partner(
            session,
            body.name,
            body.owner_email,
            actor_name(operator),
            utcnow(),
            body.rate_limit_per_minute,
        )
        invitation = opened.invitation.invitation
        return OpenedPartnerOut(
            partner=_detail(services, session, opened.partner.public_id),
            invitation=InvitationOut(
                email=invitation.email,
                role=invitation.role,
                expires_at=invitation.expires_at,
                link=services.settings.public_url.rstrip("/") + opened.invitation.path,
            ),
        )


@router.get(
    "/partners/{partner_id}",
    response_model=PartnerDetailOut,
    summary="Show a partner",
)
def partner_detail(
    partner_id: str, operator: OperatorDep, services: ServicesDep
) -> PartnerDetailOut:
    """Balances and held money, credit limits, its prices, review and rate limits, keys,
    members and invitations, claims by status, deposits waiting for a second person."""
    with services.db.read_session() as session:
        return _detail(services, session, partner_id)


@router.put(
    "/partners/{partner_id}/prices/{sku}",
    response_model=PartnerPriceOut,
    summary="Set a partner's price for a product",
)
def set_price(
    partner_id: str, sku: str, body: PriceIn, operator: OperatorDep, services: ServicesDep
) -> PartnerPriceOut:
    """The partner pays this instead of the product's default price (in the price currency)."""
    with services.db.session() as session:
        partner = partners.get_partner(session, partner_id)
        price = catalog.set_partner_price(session, partner, sku, body.price, actor_name(operator))
        default = catalog.price_of(catalog.get_product(session, sku), {})
    return PartnerPriceOut(sku=sku, price=MoneyOut.of(price), default=MoneyOut.of(default))


@router.delete(
    "/partners/{partner_id}/prices/{sku}",
    status_code=204,
    summary="Remove a partner's price for a product",
)
def clear_price(partner_id: str, sku: str, operator: OperatorDep, services: ServicesDep) -> None:
    """The partner pays the product's default price again."""
    with services.db.session() as session:
        partner = partners.get_partner(session, partner_id)
        catalog.clear_partner_price(session, partner, sku, actor_name(operator))


def _limit(money: MoneyIn | None) -> Money | None:
    if money is None:
        return None
    try:
        return Money.parse(money.amount, money.currency)
    except InvalidMoneyError as exc:
        raise InvalidInputError(str(exc), pointer="#/amount_over") from exc


@router.put(
    "/partners/{partner_id}/review-limits",
    response_model=ReviewLimitsOut,
    summary="Set a partner's manual-review limits",
)
def set_review_limits(
    partner_id: str, body: ReviewLimitsIn, operator: OperatorDep, services: ServicesDep
) -> ReviewLimitsOut:
    """Orders of more codes, or costing more, wait for an operator's review; a null limit
    falls back to the operator-wide default. The partner's sandbox gets the same limits."""
    amount = _limit(body.amount_over)
    with services.db.session() as session:
        partner = partners.get_partner(session, partner_id)
        partners.set_review_limits(
            session, partner, body.quantity_over, amount, actor_name(operator)
        )
    return ReviewLimitsOut(
        quantity_over=body.quantity_over,
        amount_over=None if amount is None else MoneyOut.of(amount),
    )


@router.put(
    "/partners/{partner_id}/rate-limit",
    response_model=RateLimitOut,
    summary="Set a partner's rate limit",
)
def set_rate_limit(
    partner_id: str, body: RateLimitIn, operator: OperatorDep, services: ServicesDep
) -> RateLimitOut:
    """Requests a minute per key, from the next request on (null: the default); its sandbox
    keys get the same."""
    with services.db.session() as session:
        partner = partners.get_partner(session, partner_id)
        partners.set_rate_limit(session, partner, body.per_minute, actor_name(operator))
    default = services.settings.rate_limit_per_minute
    return RateLimitOut(per_minute=body.per_minute, effective_per_minute=body.per_minute or default)
