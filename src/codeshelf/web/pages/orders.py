"""Overview, Orders, an order's page (codes masked; revealed or downloaded by roles that may,
each time written to the audit log), and New order: the same services as the API."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, date, datetime, time, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from codeshelf.claims import service as claims
from codeshelf.idempotency.service import KeyInUseError, StoredResponse
from codeshelf.kit import csvs, paging
from codeshelf.kit.errors import DomainError, http_status
from codeshelf.members.roles import Permission
from codeshelf.orders import service as orders
from codeshelf.orders.models import OrderStatus
from codeshelf.orders.schemas import OrderCreate, OrderOut
from codeshelf.orders.service import submission
from codeshelf.stock import service as stock
from codeshelf.wallet import service as wallet
from codeshelf.web import chart
from codeshelf.web.http import (
    Viewer,
    ViewerDep,
    checked_form,
    csv_download,
    field,
    page,
    parse_day,
    redirect,
    require,
    services,
    whole_number,
)

router = APIRouter(prefix="/account")
PAGE_SIZE = 25
CSV_ROWS = 10_000
STATUSES = tuple(OrderStatus)
IN_USE_RETRIES = 20
IN_USE_WAIT_S = 0.1


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, who: ViewerDep) -> Response:
    svc = services(request)
    with svc.db.read_session() as session:
        money, spend = None, {}
        if who.can(Permission.FINANCE) or who.can(Permission.PLACE_ORDERS):
            money = wallet.all_balances(session, who.partner.id)
            today = datetime.now(UTC).date()
            since = datetime.combine(today - timedelta(days=chart.DAYS - 1), time(), UTC)
            spend = wallet.spend_per_day(session, who.partner.id, since)
        recent = (
            _orders(session, who, None, 5, None, None) if who.can(Permission.VIEW_ORDERS) else []
        )
        waiting: list[tuple[str, str | None]] = []
        if who.can(Permission.CLAIMS):  # the operator asked these claims for more
            asked = claims.list_claims(
                session, who.partner.id, before=None, limit=10, status="needs_info"
            )
            waiting = [(claim.public_id, claim.info_request) for claim in asked]
    available, held = (money.available, money.held) if money else ([], [])
    charts = {
        currency: chart.bars(days, currency, datetime.now(UTC).date())
        for currency, days in sorted(spend.items())
    }
    return page(
        request, "overview.html", who, available=available, held=held, recent=recent,
        charts=charts, chart=chart, waiting=waiting,
    )  # fmt: skip


def _orders(
    session: Session,
    who: Viewer,
    before: str | None,
    limit: int,
    status: str | None,
    client_order_id: str | None,
    days: tuple[date | None, date | None] = (None, None),
) -> list[OrderOut]:
    first, last = days
    found = orders.list_orders(
        session,
        who.partner.id,
        before=before,
        limit=limit,
        status=status,
        client_order_id=client_order_id,
        created_since=datetime.combine(first, time(), UTC) if first else None,
        created_before=datetime.combine(last, time(), UTC) + timedelta(days=1) if last else None,
    )
    products = orders.products_by_id(session, {i.product_id for o in found for i in o.items})
    return [OrderOut.of(order, products) for order in found]


@router.get("/orders", response_class=HTMLResponse)
def order_list(
    request: Request,
    who: ViewerDep,
    status: str = "",
    client_order_id: str = "",
    since: str = "",
    until: str = "",
    cursor: str = "",
    format: str = "",
) -> Response:
    """Filtered by status, ``client_order_id`` and the days (UTC) created; ``format=csv``
    gives every order the filters match (up to CSV_ROWS), without codes."""
    require(who, Permission.VIEW_ORDERS)
    chosen = status if status in STATUSES else None
    days = (parse_day(since), parse_day(until))
    as_csv = format == "csv"
    svc = services(request)
    error = None
    with svc.db.read_session() as session:
        try:
            shown = _orders(
                session, who, None if as_csv else cursor or None,
                CSV_ROWS if as_csv else paging.fetch_size(PAGE_SIZE), chosen,
                client_order_id[:128] or None, days,
            )  # fmt: skip
        except DomainError as exc:
            shown, error = [], exc.detail
    if as_csv:
        return _orders_csv(shown)
    shown, following = paging.cut(shown, PAGE_SIZE, lambda row: row.id)
    return page(
        request, "orders.html", who, orders=shown, chosen_status=chosen or "",
        client_order_id=client_order_id[:128], next_cursor=following, statuses=STATUSES,
        error=error, since=days[0].isoformat() if days[0] else "",
        until=days[1].isoformat() if days[1] else "",
    )  # fmt: skip


def _orders_csv(shown: list[OrderOut]) -> Response:
    header = ["id", "client_order_id", "status", "created_at", "delivered_at", "product_id",
              "quantity", "unit_price", "total", "currency"]  # fmt: skip
    rows = [
        [
            order.id, order.client_order_id or "", order.status, order.created_at.isoformat(),
            order.delivered_at.isoformat() if order.delivered_at else "", item.product_id,
            item.quantity, item.unit_price.amount, item.total.amount, order.total.currency,
        ]
        for order in shown
        for item in order.items
    ]  # fmt: skip
    return csv_download("orders.csv", csvs.table(header, rows, typed={"client_order_id"}))


@router.get("/orders/new", response_class=HTMLResponse)
def new_order_page(request: Request, who: ViewerDep) -> Response:
    require(who, Permission.PLACE_ORDERS)
    return _new_order_form(request, who, error=None, status=200)


def _new_order_form(
    request: Request, who: Viewer, error: str | None, status: int, **kept: str
) -> Response:
    svc = services(request)
    with svc.db.read_session() as session:
        lines = stock.inventory(session, who.partner)
    return page(
        request, "new_order.html", who, status=status, lines=lines, error=error,
        idempotency_key=kept.get("key") or str(uuid.uuid4()), kept=kept,
    )  # fmt: skip


@router.post("/orders/new", response_class=HTMLResponse)
async def place(request: Request, who: ViewerDep) -> Response:
    require(who, Permission.PLACE_ORDERS)
    form = await checked_form(request, who)
    kept = {
        "key": field(form, "idempotency_key", 255),
        "product": field(form, "product", 64),
        "quantity": field(form, "quantity", 12),
        "client_order_id": field(form, "client_order_id", 128),
    }
    try:
        payload = OrderCreate(
            product_id=kept["product"],
            quantity=whole_number(kept["quantity"]) or 0,
            client_order_id=kept["client_order_id"] or None,
        )
    except ValidationError as exc:
        message = "; ".join(error["msg"] for error in exc.errors())
        return _new_order_form(request, who, message, 422, **kept)
    try:
        stored = await _submit(request, who, payload, kept["key"] or str(uuid.uuid4()))
    except DomainError as exc:
        return _new_order_form(request, who, exc.detail, http_status(exc), **kept)
    body = json.loads(stored.body)
    if stored.status != 201:  # a refusal, stored under this key: a corrected order is a new one
        return _new_order_form(request, who, body["detail"], stored.status, **{**kept, "key": ""})
    return redirect(f"/account/orders/{body['id']}")


async def _submit(request: Request, who: Viewer, payload: OrderCreate, key: str) -> StoredResponse:
    """Submit once per form: a second click while the first is still running waits for it
    (a moment at most), then gets the same answer, so both land on the same order."""
    svc = services(request)
    for _ in range(IN_USE_RETRIES):
        try:
            return await run_in_threadpool(
                submission.submit, svc.db, svc.settings, who.partner, payload, key, _refusal
            )
        except KeyInUseError:
            await asyncio.sleep(IN_USE_WAIT_S)
    return await run_in_threadpool(
        submission.submit, svc.db, svc.settings, who.partner, payload, key, _refusal
    )


def _refusal(error: DomainError) -> tuple[int, str]:
    return http_status(error), json.dumps({"slug": error.slug, "detail": error.detail})


@router.get("/orders/{order_id}", response_class=HTMLResponse)
def order_page(request: Request, who: ViewerDep, order_id: str) -> Response:
    require(who, Permission.VIEW_ORDERS)
    svc = services(request)
    with svc.db.read_session() as session:
        order = orders.get_order(session, who.partner.id, order_id)
        products = orders.products_by_id(session, {item.product_id for item in order.items})
        shown = OrderOut.of(order, products)
    return page(request, "order.html", who, order=shown, codes=None)


@router.post("/orders/{order_id}/reveal", response_class=HTMLResponse)
async def reveal(request: Request, who: ViewerDep, order_id: str) -> Response:
    require(who, Permission.REVEAL_CODES)
    await checked_form(request, who)
    codes = _revealed(request, who, order_id)
    partial = request.headers.get("hx-request") == "true"  # htmx swaps the table into the page
    return page(request, "_codes.html" if partial else "codes_page.html", who, codes=codes)


@router.post("/orders/{order_id}/codes.csv")
async def download(request: Request, who: ViewerDep, order_id: str) -> Response:
    require(who, Permission.REVEAL_CODES)
    await checked_form(request, who)
    codes = _revealed(request, who, order_id)
    rows = [(code.product_id, code.code, code.state) for code in codes]  # codes as delivered
    return csv_download(f"{order_id}-codes.csv", csvs.table(["product_id", "code", "state"], rows))


def _revealed(request: Request, who: Viewer, order_id: str) -> list[orders.RevealedCode]:
    svc = services(request)
    with svc.db.session() as session:
        _, codes = orders.reveal_codes(
            session, svc.vault, who.partner, None, order_id, actor=who.actor
        )
    return codes
