"""Pricing an order: each line resolved to a product (by id, or by region and denomination)
and priced for the partner; the quantity limits; one currency per order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import ColumnElement, and_, select
from sqlalchemy.orm import Session

from codeshelf.catalog import service as catalog
from codeshelf.catalog.models import PartnerPrice, Product
from codeshelf.kit.errors import InvalidInputError
from codeshelf.kit.money import InvalidMoneyError, Money
from codeshelf.partners.models import Partner

# Shown with a refusal whose region contradicts the product's, for the reseller's customer.
REGION_MISMATCH_MESSAGE = (
    "This card is for a different PlayStation Store region than the one you chose. Please "
    "check your account's region and choose a matching card."
)


class UnknownProductError(InvalidInputError):
    slug = "unknown-product"


class MixedCurrencyError(InvalidInputError):
    slug = "mixed-currency"


@dataclass(frozen=True)
class ItemRequest:
    """One requested line: a product id, or a region and denomination (and optionally more)."""

    quantity: int
    pointer: str  # JSON Pointer of this line in the request ("#/items/0" or "#")
    product_id: str | None = None
    region: str | None = None
    denomination: Decimal | None = None
    currency: str | None = None
    platform: str | None = None


@dataclass(frozen=True)
class PricedItem:
    product: Product
    quantity: int
    unit_price: Money


def _field(pointer: str, name: str) -> str:
    return f"{pointer.rstrip('/')}/{name}" if pointer != "#" else f"#/{name}"


def _matches_denomination(product: Product, item: ItemRequest) -> bool:
    if item.currency is not None and item.currency.upper() != product.face_currency:
        return False
    if item.platform is not None and item.platform.lower() != product.platform:
        return False
    try:
        face = Money.parse(item.denomination or Decimal(0), product.face_currency)
    except InvalidMoneyError:
        return False
    return face.minor == product.face_value_minor


def _priced_products(
    session: Session, partner_id: int, condition: ColumnElement[bool]
) -> list[tuple[Product, Money]]:
    """Products matching ``condition``, each with this partner's price (one query)."""
    rows = session.execute(
        select(Product, PartnerPrice.price_minor)
        .outerjoin(
            PartnerPrice,
            and_(PartnerPrice.product_id == Product.id, PartnerPrice.partner_id == partner_id),
        )
        .where(condition)
    ).all()
    return [
        (product, Money(override or product.price_minor, product.price_currency))
        for product, override in rows
    ]


def _check_consistent(product: Product, item: ItemRequest) -> None:
    """A line naming a product may repeat its region and denomination, but not contradict them."""
    if item.region is not None and item.region.upper() != product.region:
        raise UnknownProductError(
            f"{product.sku} is a {product.region} product, not {item.region}",
            pointer=_field(item.pointer, "region"),
            customer_message=REGION_MISMATCH_MESSAGE,
        )
    if item.denomination is not None and not _matches_denomination(product, item):
        raise UnknownProductError(
            f"{product.sku} does not match denomination {item.denomination} "
            f"{item.currency or ''}".rstrip(),
            pointer=_field(item.pointer, "denomination"),
        )
    if item.currency is not None and item.currency.upper() != product.face_currency:
        raise UnknownProductError(
            f"{product.sku} is denominated in {product.face_currency}",
            pointer=_field(item.pointer, "currency"),
        )
    if item.platform is not None and item.platform.lower() != product.platform:
        raise UnknownProductError(
            f"{product.sku} is a {product.platform} product",
            pointer=_field(item.pointer, "platform"),
        )


def _price_item(session: Session, partner_id: int, item: ItemRequest) -> PricedItem:
    if item.product_id is not None:
        found = _priced_products(session, partner_id, Product.sku == item.product_id)
        if not found:
            raise UnknownProductError(
                f"no product {item.product_id!r}", pointer=_field(item.pointer, "product_id")
            )
        product, price = found[0]
        _check_consistent(product, item)
        catalog.check_on_sale(product, _field(item.pointer, "product_id"))
        return PricedItem(product, item.quantity, price)
    region = (item.region or "").upper()
    candidates = _priced_products(session, partner_id, Product.region == region)
    if not candidates:
        raise UnknownProductError(
            f"no product for region {item.region!r}", pointer=_field(item.pointer, "region")
        )
    matches = [(p, price) for p, price in candidates if _matches_denomination(p, item)]
    if not matches:
        raise UnknownProductError(
            f"no {region} product with denomination {item.denomination}",
            pointer=_field(item.pointer, "denomination"),
        )
    if len(matches) > 1:
        raise UnknownProductError(
            f"{len(matches)} products match {region} {item.denomination}; name one with "
            f"product_id ({', '.join(p.sku for p, _ in matches)})",
            pointer=_field(item.pointer, "denomination"),
        )
    product, price = matches[0]
    catalog.check_on_sale(product, _field(item.pointer, "denomination"))
    return PricedItem(product, item.quantity, price)


def price_items(session: Session, partner: Partner, items: list[ItemRequest]) -> list[PricedItem]:
    """Resolve and price every line; refuses unknown and retired products, and orders in two
    currencies."""
    priced = [_price_item(session, partner.price_list_id, item) for item in items]
    currencies = {line.unit_price.currency for line in priced}
    if len(currencies) > 1:
        raise MixedCurrencyError(
            f"an order is paid in one currency; these items are priced in {sorted(currencies)}",
            pointer="#/items",
        )
    return priced


def check_quantities(items: Sequence[ItemRequest], maximum: int) -> None:
    """At most ``maximum`` codes per line and per order (CODESHELF_MAX_ORDER_QUANTITY)."""
    total = 0
    for item in items:
        if item.quantity > maximum:
            pointer = "#/quantity" if item.pointer == "#" else f"{item.pointer}/quantity"
            raise InvalidInputError(f"quantity must be at most {maximum}", pointer=pointer)
        total += item.quantity
    if total > maximum:
        raise InvalidInputError(f"an order holds at most {maximum} codes", pointer="#/items")
