"""Partners in the console: the list, one partner's whole file (wallet and held money, prices,
limits, keys, members, claims), opening a partner with its owner's invitation, and the
finance and limits changes, each through its domain's one service function."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from codeshelf.catalog import service as catalog
from codeshelf.dossier import service as dossier
from codeshelf.kit.clock import utcnow
from codeshelf.kit.errors import DomainError, InvalidInputError, http_status
from codeshelf.kit.money import InvalidMoneyError, Money
from codeshelf.members.roles import StaffPermission
from codeshelf.members.service import onboarding
from codeshelf.partners import service as partners
from codeshelf.wallet import service as wallet
from codeshelf.web.http import (
    Staff,
    StaffDep,
    checked_form,
    field,
    page,
    require_staff,
    services,
    whole_number,
)

router = APIRouter(prefix="/ops/partners")


def _list(
    request: Request, who: Staff, *, error: str | None = None, link: str | None = None,
    status: int = 200,
) -> Response:  # fmt: skip
    with services(request).db.read_session() as session:
        found = dossier.partner_list(session)
    return page(
        request, "ops/partners.html", who, status=status, partners=found, error=error, link=link
    )


@router.get("", response_class=HTMLResponse)
def partner_list(request: Request, who: StaffDep) -> Response:
    require_staff(who, StaffPermission.PARTNERS)
    return _list(request, who)


def _optional_int(value: str, pointer: str) -> int | None:
    if not value.strip():
        return None
    number = whole_number(value.strip(), 9)
    if number is None:
        raise InvalidInputError("a whole number is required", pointer=pointer)
    return number


@router.post("", response_class=HTMLResponse)
async def open_partner(request: Request, who: StaffDep) -> Response:
    """A new partner and its owner's invitation (the link shown once, to send)."""
    require_staff(who, StaffPermission.MANAGE_PARTNERS)
    form = await checked_form(request, who)
    svc = services(request)
    try:
        with svc.db.session() as session:
            opened = onboarding.open_partner(
                session, field(form, "name", 200), field(form, "owner_email", 254), who.actor,
                utcnow(), _optional_int(field(form, "rate_limit", 9), "#/rate_limit"),
            )  # fmt: skip
            link = svc.settings.public_url.rstrip("/") + opened.invitation.path
    except DomainError as exc:
        return _list(request, who, error=exc.detail, status=http_status(exc))
    return _list(request, who, link=link)


def _detail(
    request: Request, who: Staff, partner_id: str, *, error: str | None = None,
    notice: str | None = None, status: int = 200,
) -> Response:  # fmt: skip
    with services(request).db.read_session() as session:
        found = dossier.partner_detail(session, partner_id, utcnow())
        products = catalog.list_products(session)
    return page(
        request, "ops/partner.html", who, status=status, partner=found, products=products,
        error=error, notice=notice,
    )  # fmt: skip


@router.get("/{partner_id}", response_class=HTMLResponse)
def partner_page(request: Request, who: StaffDep, partner_id: str) -> Response:
    require_staff(who, StaffPermission.PARTNERS)
    return _detail(request, who, partner_id)


def _deposit(request: Request, who: Staff, partner_id: str, form: FormData) -> str:
    svc = services(request)
    try:
        money = Money.parse(field(form, "amount", 32), field(form, "currency", 3).upper())
    except InvalidMoneyError as exc:
        raise InvalidInputError(str(exc), pointer="#/amount") from None
    with svc.db.session() as session:
        partner = partners.get_partner(session, partner_id)
        outcome = wallet.ask_deposit(
            session, partner, money, field(form, "reference", 128), who.actor,
            svc.settings.deposit_thresholds(), utcnow(),
        )  # fmt: skip
    if outcome.pending:
        return f"{money} is above the approval threshold: it waits for a second person."
    return f"{money} deposited." if outcome.created else "Already deposited: nothing changed."


def _price(request: Request, who: Staff, partner_id: str, form: FormData) -> str:
    sku, price = field(form, "sku", 64), field(form, "price", 32).strip()
    with services(request).db.session() as session:
        partner = partners.get_partner(session, partner_id)
        if price:
            set_to = catalog.set_partner_price(session, partner, sku, price, who.actor)
            return f"{sku}: {set_to} for this partner."
        default = catalog.clear_partner_price(session, partner, sku, who.actor)
        return f"{sku}: back to the default price, {default}."


def _money_or_none(form: FormData, name: str) -> Money | None:
    amount = field(form, name, 32).strip()
    if not amount:
        return None
    try:
        return Money.parse(amount, field(form, f"{name}_currency", 3).upper())
    except InvalidMoneyError as exc:
        raise InvalidInputError(str(exc), pointer=f"#/{name}") from None


def _limits(request: Request, who: Staff, partner_id: str, form: FormData) -> str:
    per_minute = _optional_int(field(form, "rate_limit", 9), "#/rate_limit")
    quantity = _optional_int(field(form, "quantity_over", 9), "#/quantity_over")
    amount = _money_or_none(form, "amount_over")
    with services(request).db.session() as session:
        partner = partners.get_partner(session, partner_id)
        partners.set_rate_limit(session, partner, per_minute, who.actor)
        partners.set_review_limits(session, partner, quantity, amount, who.actor)
    return "Limits saved."


CHANGES = {  # form action -> (permission, change)
    "deposit": (StaffPermission.FINANCE, _deposit),
    "price": (StaffPermission.FINANCE, _price),
    "limits": (StaffPermission.MANAGE_PARTNERS, _limits),
}


@router.post("/{partner_id}", response_class=HTMLResponse)
async def change(request: Request, who: StaffDep, partner_id: str) -> Response:
    """A deposit (four eyes above the threshold), a partner price, or the limits."""
    form = await checked_form(request, who)
    permission, apply = CHANGES.get(field(form, "action", 16), CHANGES["deposit"])
    require_staff(who, permission)
    try:
        notice = apply(request, who, partner_id, form)
    except DomainError as exc:
        return _detail(request, who, partner_id, error=exc.detail, status=http_status(exc))
    return _detail(request, who, partner_id, notice=notice)
