"""The operator's catalog API under /api/v1/admin/products, for operator keys only: the products
with their default price, changing that price, retiring and unretiring."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from codeshelf.api.deps import OperatorDep, ServicesDep
from codeshelf.catalog import service
from codeshelf.catalog.models import Product
from codeshelf.kit.clock import utcnow
from codeshelf.kit.money import Money
from codeshelf.kit.schemas import MoneyOut
from codeshelf.operators.service import actor_name

router = APIRouter(prefix="/admin", tags=["admin: catalog"])


class AdminProductOut(BaseModel):
    product_id: str = Field(description="The SKU.")
    platform: str
    region: str
    denomination: MoneyOut
    price: MoneyOut = Field(description="The default price; partner prices override it.")
    backordered: int = Field(description="Codes waiting backorders ask for.")
    set_aside: int = Field(
        description="Codes in stock kept for waiting backorders (only codes that arrived while "
        "they waited); the rest of the stock is on sale."
    )
    retired_at: datetime | None = Field(description="Set once retired: no longer listed or sold.")

    @classmethod
    def of(cls, product: Product) -> AdminProductOut:
        return cls(
            product_id=product.sku,
            platform=product.platform,
            region=product.region,
            denomination=MoneyOut.of(service.face_value(product)),
            price=MoneyOut.of(Money(product.price_minor, product.price_currency)),
            backordered=product.backordered,
            set_aside=product.set_aside,
            retired_at=product.retired_at,
        )


class AdminProductPage(BaseModel):
    data: list[AdminProductOut]


class PriceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    price: str = Field(
        max_length=32, description="The new default price in the product's price currency."
    )


class PriceChangeOut(BaseModel):
    product_id: str
    previous: MoneyOut
    price: MoneyOut
    changed: bool = Field(description="False when the product already had this price.")


@router.get("/products", response_model=AdminProductPage, summary="Products")
def list_products(operator: OperatorDep, services: ServicesDep) -> AdminProductPage:
    """Every product by SKU, retired ones included."""
    with services.db.read_session() as session:
        products = service.list_products(session)
        return AdminProductPage(data=[AdminProductOut.of(product) for product in products])


@router.post(
    "/products/{sku}/price",
    response_model=PriceChangeOut,
    summary="Change a product's default price",
)
def set_price(
    sku: str, body: PriceIn, operator: OperatorDep, services: ServicesDep
) -> PriceChangeOut:
    """Change the product's default price (audited with the old and new). Orders already
    placed keep their price; partner prices still override it."""
    with services.db.session() as session:
        change = service.set_default_price(session, sku, body.price, actor_name(operator))
    return PriceChangeOut(
        product_id=sku,
        previous=MoneyOut.of(change.previous),
        price=MoneyOut.of(change.price),
        changed=change.changed,
    )


@router.post(
    "/products/{sku}/retire",
    response_model=AdminProductOut,
    summary="Retire a product",
)
def retire(sku: str, operator: OperatorDep, services: ServicesDep) -> AdminProductOut:
    """Stop selling the product: it leaves the inventory and orders for it are refused
    (`product-retired`); its past orders, codes and claims stay. Refused while backorders
    wait for it."""
    with services.db.session() as session:
        product = service.retire_product(session, sku, actor_name(operator), utcnow())
        return AdminProductOut.of(product)


@router.post(
    "/products/{sku}/unretire",
    response_model=AdminProductOut,
    summary="Sell a retired product again",
)
def unretire(sku: str, operator: OperatorDep, services: ServicesDep) -> AdminProductOut:
    """Sell a retired product again, with the stock it still has."""
    with services.db.session() as session:
        product = service.unretire_product(session, sku, actor_name(operator))
        return AdminProductOut.of(product)
