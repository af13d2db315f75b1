"""Stock in the console: products (add, the default price, retire and unretire, stock and how
long it lasts), batches and suppliers with their claim rates drawn so a bad batch stands out,
quarantine and release. Imports by upload are in ``ops/imports``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from codeshelf.catalog import service as catalog
from codeshelf.claims import service as claims
from codeshelf.kit.clock import utcnow
from codeshelf.kit.errors import DomainError, InvalidInputError, http_status
from codeshelf.members.roles import StaffPermission
from codeshelf.stock import service as stock
from codeshelf.web import chart
from codeshelf.web.http import (
    Staff,
    StaffDep,
    checked_form,
    field,
    page,
    require_staff,
    services,
)
from codeshelf.worker import after_stock_arrives

router = APIRouter(prefix="/ops/stock")
COVER_WINDOW_DAYS = 14


def _products(
    request: Request, who: Staff, *, error: str | None = None, notice: str | None = None,
    status: int = 200,
) -> Response:  # fmt: skip
    with services(request).db.read_session() as session:
        products = catalog.list_products(session)
        counts = {row["sku"]: row for row in stock.summary(session)}
        cover = {c.sku: c for c in stock.stock_cover(session, utcnow(), COVER_WINDOW_DAYS)}
    return page(
        request, "ops/stock.html", who, status=status, products=products, counts=counts,
        cover=cover, window=COVER_WINDOW_DAYS, error=error, notice=notice,
    )  # fmt: skip


@router.get("", response_class=HTMLResponse)
def products_page(request: Request, who: StaffDep) -> Response:
    require_staff(who, StaffPermission.STOCK)
    return _products(request, who)


def _add(request: Request, who: Staff, form: FormData) -> str:
    with services(request).db.session() as session:
        product = catalog.add_product(
            session, sku=field(form, "sku", 64).strip(), platform="psn",
            region=field(form, "region", 8), face_value=field(form, "face_value", 32),
            currency=field(form, "currency", 3).upper(), price=field(form, "price", 32),
            price_currency=field(form, "price_currency", 3).upper() or None, actor=who.actor,
        )  # fmt: skip
        return f"Added {product.sku}."


def _price(request: Request, who: Staff, form: FormData) -> str:
    with services(request).db.session() as session:
        changed = catalog.set_default_price(
            session, field(form, "sku", 64), field(form, "price", 32), who.actor
        )
    return f"{changed.sku}: {changed.previous} → {changed.price} from the next order on."


def _retire(request: Request, who: Staff, form: FormData) -> str:
    sku = field(form, "sku", 64)
    with services(request).db.session() as session:
        if field(form, "retire", 3) == "yes":
            catalog.retire_product(session, sku, who.actor, utcnow())
            return f"{sku} is retired: no longer listed or sold; its past orders stay."
        catalog.unretire_product(session, sku, who.actor)
        return f"{sku} is on sale again."


PRODUCT_CHANGES = {"add": _add, "price": _price, "retire": _retire}


@router.post("", response_class=HTMLResponse)
async def change_product(request: Request, who: StaffDep) -> Response:
    require_staff(who, StaffPermission.STOCK)
    form = await checked_form(request, who)
    change = PRODUCT_CHANGES.get(field(form, "action", 16))
    try:
        if change is None:
            raise InvalidInputError("unknown action")
        notice = change(request, who, form)
    except DomainError as exc:
        return _products(request, who, error=exc.detail, status=http_status(exc))
    return _products(request, who, notice=notice)


def _batches(
    request: Request, who: Staff, *, error: str | None = None, notice: str | None = None,
    status: int = 200,
) -> Response:  # fmt: skip
    with services(request).db.read_session() as session:
        batches = claims.batch_quality(session)
    suppliers = stock.supplier_quality(batches)
    return page(
        request, "ops/batches.html", who, status=status, batches=batches, suppliers=suppliers,
        bars=chart.rate_bars([(b.reference, b.claim_rate) for b in batches]), chart=chart,
        error=error, notice=notice,
    )  # fmt: skip


@router.get("/batches", response_class=HTMLResponse)
def batches_page(request: Request, who: StaffDep) -> Response:
    require_staff(who, StaffPermission.STOCK)
    return _batches(request, who)


@router.post("/batches", response_class=HTMLResponse)
async def quarantine_or_release(request: Request, who: StaffDep) -> Response:
    """Quarantine a batch's available codes, or release them (codes never delivered only),
    then serve what waits for stock, as after an import."""
    require_staff(who, StaffPermission.STOCK)
    form = await checked_form(request, who)
    reference, db = field(form, "reference", 128), services(request).db
    try:
        if field(form, "action", 16) == "release":
            with db.session() as session:
                released = stock.release_batch(session, reference, who.actor)
            with db.session() as session:
                served = after_stock_arrives(session, who.actor)
            notice = (
                f"Released {released.released} codes of {reference}; {released.kept} stay "
                f"quarantined (disputed by claims). Served: {served.claims} claims, "
                f"{served.filled} backorders."
            )
        else:
            with db.session() as session:
                moved = stock.quarantine_batch(session, reference, who.actor)
            notice = f"Quarantined {moved} available codes of {reference}."
    except DomainError as exc:
        return _batches(request, who, error=exc.detail, status=http_status(exc))
    return _batches(request, who, notice=notice)


def cover_soon(request: Request, days: int) -> list[stock.StockCover]:
    """Products whose free stock covers fewer than ``days`` of their recent sales."""
    with services(request).db.read_session() as session:
        return stock.low_cover(session, utcnow(), days, COVER_WINDOW_DAYS)
