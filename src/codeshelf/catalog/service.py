"""Products and partner price lists: adding products, their default price, retiring them.

A retired product is no longer sold: it leaves the partners' inventory, new orders and
backorders for it are refused (``check_on_sale``), and its past orders, codes, claims and
statements stay as they were. It cannot be retired while backorders wait for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from codeshelf.audit import service as audit
from codeshelf.catalog.codes import PLATFORMS
from codeshelf.catalog.models import PartnerPrice, Product
from codeshelf.kit.errors import ConflictError, InvalidInputError, NotFoundError
from codeshelf.kit.money import InvalidMoneyError, Money
from codeshelf.partners.models import Partner

SKU_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
REGION_PATTERN = re.compile(r"[A-Z]{2,8}")


class ProductNotFoundError(NotFoundError):
    slug = "product-not-found"


class ProductExistsError(ConflictError):
    slug = "product-exists"


class ProductRetiredError(InvalidInputError):
    """An order or backorder for a retired product (422, as an unknown product is)."""

    slug = "product-retired"


class ProductHasBackordersError(ConflictError):
    slug = "product-has-backorders"


class ProductAlreadyRetiredError(ConflictError):
    slug = "product-already-retired"


class ProductNotRetiredError(ConflictError):
    slug = "product-not-retired"


def face_value(product: Product) -> Money:
    return Money(product.face_value_minor, product.face_currency)


def _money(amount: str, currency: str, field: str) -> Money:
    try:
        money = Money.parse(amount, currency)
    except InvalidMoneyError as exc:
        raise InvalidInputError(f"{field}: {exc}", pointer=f"#/{field}") from exc
    if money.minor <= 0:
        raise InvalidInputError(f"{field} must be positive", pointer=f"#/{field}")
    return money


def add_product(
    session: Session,
    *,
    sku: str,
    platform: str,
    region: str,
    face_value: str,
    currency: str,
    price: str,
    price_currency: str | None = None,
    actor: str = audit.OPERATOR_CLI,
) -> Product:
    if not SKU_PATTERN.fullmatch(sku):
        raise InvalidInputError(
            "SKU must be lower-case letters, digits and hyphens", pointer="#/sku"
        )
    if platform not in PLATFORMS:
        raise InvalidInputError(f"platform must be one of {', '.join(PLATFORMS)}")
    region = region.upper()
    if not REGION_PATTERN.fullmatch(region):
        raise InvalidInputError("region must be 2 to 8 letters, such as US", pointer="#/region")
    face = _money(face_value, currency, "face_value")
    wholesale = _money(price, price_currency or currency, "price")
    if session.scalar(select(Product.id).where(Product.sku == sku)) is not None:
        raise ProductExistsError(f"product {sku} already exists")
    clash = session.scalar(
        select(Product.sku).where(
            Product.platform == platform,
            Product.region == region,
            Product.face_value_minor == face.minor,
            Product.face_currency == face.currency,
        )
    )
    if clash is not None:
        raise ProductExistsError(f"{clash} already sells {platform} {region} {face}")
    product = Product(
        sku=sku,
        platform=platform,
        region=region,
        face_value_minor=face.minor,
        face_currency=face.currency,
        price_minor=wholesale.minor,
        price_currency=wholesale.currency,
    )
    session.add(product)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="product.add",
        subject=sku,
        details={"price": wholesale.amount, "currency": wholesale.currency},
    )
    return product


def list_products(session: Session, *, include_retired: bool = True) -> list[Product]:
    """Every product by SKU; without the retired ones when ``include_retired`` is false (what
    partners see)."""
    query = select(Product).order_by(Product.sku)
    if not include_retired:
        query = query.where(Product.retired_at.is_(None))
    return list(session.scalars(query))


def get_product(session: Session, sku: str) -> Product:
    # Every SKU has SKU_PATTERN's shape: anything else (a NUL, which PostgreSQL refuses in
    # text) names no product and is not looked up.
    product = (
        session.scalar(select(Product).where(Product.sku == sku))
        if SKU_PATTERN.fullmatch(sku)
        else None
    )
    if product is None:
        raise ProductNotFoundError(f"no product {sku}", pointer="#/product_id")
    return product


def set_partner_price(
    session: Session, partner: Partner, sku: str, price: str, actor: str = audit.OPERATOR_CLI
) -> Money:
    """The partner pays ``price`` for ``sku`` instead of the product's default price."""
    if partner.is_sandbox:
        raise InvalidInputError(
            f"{partner.public_id} is a sandbox partner; it uses its live twin's prices"
        )
    product = get_product(session, sku)
    money = _money(price, product.price_currency, "price")
    row = session.scalar(
        select(PartnerPrice).where(
            PartnerPrice.partner_id == partner.id, PartnerPrice.product_id == product.id
        )
    )
    previous = None if row is None else Money(row.price_minor, product.price_currency).amount
    if row is None:
        session.add(
            PartnerPrice(partner_id=partner.id, product_id=product.id, price_minor=money.minor)
        )
    else:
        row.price_minor = money.minor
    audit.record(
        session,
        actor=actor,
        action="price.set",
        partner_public_id=partner.public_id,
        subject=sku,
        details={"price": money.amount, "previous": previous, "currency": money.currency},
    )
    return money


def clear_partner_price(
    session: Session, partner: Partner, sku: str, actor: str = audit.OPERATOR_CLI
) -> Money:
    """The partner pays the product's default price for ``sku`` again (returned)."""
    if partner.is_sandbox:
        raise InvalidInputError(
            f"{partner.public_id} is a sandbox partner; it uses its live twin's prices"
        )
    product = get_product(session, sku)
    row = session.scalar(
        select(PartnerPrice).where(
            PartnerPrice.partner_id == partner.id, PartnerPrice.product_id == product.id
        )
    )
    if row is not None:
        previous = Money(row.price_minor, product.price_currency)
        session.delete(row)
        audit.record(
            session,
            actor=actor,
            action="price.clear",
            partner_public_id=partner.public_id,
            subject=sku,
            details={"previous": previous.amount, "currency": previous.currency},
        )
    return Money(product.price_minor, product.price_currency)


@dataclass(frozen=True)
class PartnerPriceLine:
    sku: str
    price: Money  # what the partner pays
    default: Money  # the product's price for everyone else


def partner_prices(session: Session, partner: Partner) -> list[PartnerPriceLine]:
    """The partner's own prices (its sandbox's are its live twin's), by SKU."""
    rows = session.execute(
        select(Product, PartnerPrice.price_minor)
        .join(PartnerPrice, PartnerPrice.product_id == Product.id)
        .where(PartnerPrice.partner_id == partner.price_list_id)
        .order_by(Product.sku)
    )
    return [
        PartnerPriceLine(product.sku, Money(price, product.price_currency), price_of(product, {}))
        for product, price in rows
    ]


def prices_for(session: Session, partner_id: int) -> dict[int, int]:
    """Partner-specific prices by product id (products without one use their default)."""
    rows = session.execute(
        select(PartnerPrice.product_id, PartnerPrice.price_minor).where(
            PartnerPrice.partner_id == partner_id
        )
    )
    return {product_id: price for product_id, price in rows}


def price_of(product: Product, overrides: dict[int, int]) -> Money:
    return Money(overrides.get(product.id, product.price_minor), product.price_currency)


@dataclass(frozen=True)
class PriceChange:
    sku: str
    previous: Money
    price: Money

    @property
    def changed(self) -> bool:
        return self.previous != self.price


def set_default_price(session: Session, sku: str, price: str, actor: str) -> PriceChange:
    """Change a product's default price (in its price currency), audited with the old and new.

    Orders already placed keep the unit price they were placed at; partner prices still
    override the default. Setting the price it already has changes and records nothing.
    """
    product = _locked(session, sku)
    money = _money(price, product.price_currency, "price")
    change = PriceChange(sku, Money(product.price_minor, product.price_currency), money)
    if not change.changed:
        return change
    product.price_minor = money.minor
    audit.record(
        session,
        actor=actor,
        action="product.price",
        subject=sku,
        details={
            "previous": change.previous.amount,
            "price": money.amount,
            "currency": money.currency,
        },
    )
    return change


def retire_product(session: Session, sku: str, actor: str, now: datetime) -> Product:
    """Stop selling a product: it leaves the inventory, and orders and backorders for it are
    refused from now on. Refused while backorders wait for it (they are owed its codes: let
    them be filled or expire first). Its available codes stay in stock, unsold, for claims'
    replacements; its past orders, codes and claims are untouched."""
    product = _locked(session, sku)
    if product.retired_at is not None:
        raise ProductAlreadyRetiredError(
            f"{sku} was already retired on {product.retired_at:%Y-%m-%d %H:%M} UTC"
        )
    if product.backordered > 0:
        raise ProductHasBackordersError(
            f"{product.backordered} code(s) of {sku} are promised to waiting backorders; "
            "retire it once they are filled or expired",
            backordered=product.backordered,
        )
    product.retired_at = now
    audit.record(session, actor=actor, action="product.retire", subject=sku)
    return product


def unretire_product(session: Session, sku: str, actor: str) -> Product:
    """Sell a retired product again, with whatever stock it still has."""
    product = _locked(session, sku)
    if product.retired_at is None:
        raise ProductNotRetiredError(f"{sku} is not retired")
    retired_at, product.retired_at = product.retired_at, None
    audit.record(
        session,
        actor=actor,
        action="product.unretire",
        subject=sku,
        details={"retired_at": retired_at.isoformat()},
    )
    return product


def check_on_sale(product: Product, pointer: str | None = None) -> None:
    """Refuse an order or backorder for a retired product (ProductRetiredError)."""
    if product.retired_at is not None:
        raise ProductRetiredError(
            f"{product.sku} is retired and no longer sold", pointer=pointer, product_id=product.sku
        )


def _locked(session: Session, sku: str) -> Product:
    """The product, its row locked until commit (NO KEY: order items' foreign keys hold KEY
    SHARE locks on it, as in the pick). A backorder's promise updates the same row, so a
    retirement and a new backorder never both succeed."""
    product = (
        session.scalar(select(Product).where(Product.sku == sku).with_for_update(key_share=True))
        if SKU_PATTERN.fullmatch(sku)
        else None
    )
    if product is None:
        raise ProductNotFoundError(f"no product {sku}", pointer="#/product_id")
    return product
