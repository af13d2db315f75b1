"""Developers: API keys (live and sandbox; a new key is shown once), webhook endpoints
(create, rotate the secret, enable, delete), each endpoint's delivery log with status and
latency, and replaying an event. The same partner and webhook services as the API."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from codeshelf.kit.errors import DomainError, http_status
from codeshelf.kit.money import InvalidMoneyError, Money, normalize_currency
from codeshelf.members.roles import Permission
from codeshelf.partners import service as partners
from codeshelf.partners.models import KeyMode
from codeshelf.wallet import service as wallet
from codeshelf.web.http import (
    Viewer,
    ViewerDep,
    checked_form,
    field,
    page,
    redirect,
    require,
    services,
)
from codeshelf.webhooks import service as webhooks

router = APIRouter(prefix="/account/developers")


def _page(
    request: Request,
    who: Viewer,
    *,
    shown: dict[str, str] | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    """``shown``: a secret just made, to show this once (``{"what": …, "secret": …}``)."""
    svc = services(request)
    with svc.db.read_session() as session:
        keys = partners.list_keys(session, who.partner.public_id)
        endpoints = webhooks.list_endpoints(session, who.partner.id)
        alerts = wallet.low_balance_alerts(session, who.partner.id)
    return page(
        request, "developers.html", who, status=status, keys=keys, endpoints=endpoints,
        event_types=webhooks.EVENT_TYPES, shown=shown, error=error, alerts=alerts,
    )  # fmt: skip


@router.get("", response_class=HTMLResponse)
def developers(request: Request, who: ViewerDep) -> Response:
    require(who, Permission.DEVELOPER)
    return _page(request, who)


@router.post("/keys", response_class=HTMLResponse)
async def create_key(request: Request, who: ViewerDep) -> Response:
    require(who, Permission.DEVELOPER)
    form = await checked_form(request, who)
    mode = KeyMode.TEST if form.get("mode") == KeyMode.TEST else KeyMode.LIVE
    svc = services(request)
    with svc.db.session() as session:
        issued = partners.create_key(session, who.partner.public_id, mode, actor=who.actor)
        shown = {"what": f"New {mode} API key {issued.api_key.public_id}", "secret": issued.secret}
    return _page(request, who, shown=shown)


@router.post("/keys/{key_id}/revoke", response_class=HTMLResponse)
async def revoke_key(request: Request, who: ViewerDep, key_id: str) -> Response:
    require(who, Permission.DEVELOPER)
    await checked_form(request, who)
    svc = services(request)
    try:
        with svc.db.session() as session:
            partners.revoke_key(session, who.partner.public_id, key_id, actor=who.actor)
    except DomainError as exc:
        return _page(request, who, error=exc.detail, status=http_status(exc))
    return redirect("/account/developers")


@router.post("/endpoints", response_class=HTMLResponse)
async def create_endpoint(request: Request, who: ViewerDep) -> Response:
    require(who, Permission.DEVELOPER)
    form = await checked_form(request, who)
    types = [t for t in form.getlist("event_types") if isinstance(t, str)]
    svc = services(request)
    try:
        with svc.db.session() as session:
            endpoint, secret = webhooks.create_endpoint(
                session, svc.vault, who.partner, field(form, "url", 2048), types,
                allow_private=svc.settings.webhook_allow_private, actor=who.actor,
            )  # fmt: skip
            shown = {"what": f"Signing secret of {endpoint.public_id}", "secret": secret}
    except DomainError as exc:
        return _page(request, who, error=exc.detail, status=http_status(exc))
    return _page(request, who, shown=shown)


@router.post("/endpoints/{endpoint_id}/{action}", response_class=HTMLResponse)
async def endpoint_action(
    request: Request, who: ViewerDep, endpoint_id: str, action: str
) -> Response:
    """``rotate`` (the new secret shown once), ``enable``, ``disable`` or ``delete``."""
    require(who, Permission.DEVELOPER)
    await checked_form(request, who)
    svc = services(request)
    shown = None
    try:
        with svc.db.session() as session:
            if action == "rotate":
                endpoint, secret = webhooks.rotate_secret(
                    session, svc.vault, who.partner, endpoint_id, actor=who.actor
                )
                shown = {"what": f"New signing secret of {endpoint.public_id}", "secret": secret}
            elif action == "enable":
                webhooks.enable_endpoint(session, who.partner, endpoint_id, actor=who.actor)
            elif action == "disable":
                webhooks.disable_endpoint(session, who.partner, endpoint_id, actor=who.actor)
            elif action == "delete":
                webhooks.delete_endpoint(session, who.partner, endpoint_id, actor=who.actor)
            else:
                return _page(request, who, error=f"no action {action!r}", status=404)
    except DomainError as exc:
        return _page(request, who, error=exc.detail, status=http_status(exc))
    return _page(request, who, shown=shown) if shown else redirect("/account/developers")


@router.get("/endpoints/{endpoint_id}", response_class=HTMLResponse)
def delivery_log(request: Request, who: ViewerDep, endpoint_id: str) -> Response:
    require(who, Permission.DEVELOPER)
    svc = services(request)
    with svc.db.read_session() as session:
        endpoint = webhooks.get_endpoint(session, who.partner.id, endpoint_id)
        attempts = webhooks.delivery_log(session, endpoint)
    return page(request, "delivery_log.html", who, endpoint=endpoint, attempts=attempts)


@router.post("/events/{event_id}/replay", response_class=HTMLResponse)
async def replay(request: Request, who: ViewerDep, event_id: str) -> Response:
    require(who, Permission.DEVELOPER)
    form = await checked_form(request, who)
    svc = services(request)
    with svc.db.session() as session:
        webhooks.replay(session, event_id, who.partner.id, who.actor)
    back = field(form, "endpoint", 64)
    return redirect(f"/account/developers/endpoints/{back}" if back else "/account/developers")


@router.post("/alerts", response_class=HTMLResponse)
async def balance_alert(request: Request, who: ViewerDep) -> Response:
    """Emit balance.low when a currency's balance falls below an amount (empty: no alert)."""
    require(who, Permission.DEVELOPER)
    form = await checked_form(request, who)
    svc = services(request)
    try:
        currency = normalize_currency(field(form, "currency", 3))
        amount = field(form, "below", 20).strip()
        below = Money.parse(amount, currency) if amount else None
        with svc.db.session() as session:
            wallet.set_low_balance_alert(session, who.partner, currency, below)
    except InvalidMoneyError as exc:
        return _page(request, who, error=str(exc), status=422)
    except DomainError as exc:
        return _page(request, who, error=exc.detail, status=http_status(exc))
    return redirect("/account/developers")
