"""Products and partner price lists."""

from __future__ import annotations

import re
from dataclasses import dataclass

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
        actor=audit.OPERATOR_CLI,
        action="product.add",
        subject=sku,
        details={"price": wholesale.amount, "currency": wholesale.currency},
    )
    return product


def list_products(session: Session) -> list[Product]:
    return list(session.scalars(select(Product).order_by(Product.sku)))


def get_product(session: Session, sku: str) -> Product:
    product = session.scalar(select(Product).where(Product.sku == sku))
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
