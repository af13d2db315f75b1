"""``codeshelf product …``: the catalog."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from codeshelf.catalog import service as catalog
from codeshelf.catalog.service import face_value
from codeshelf.cli import context
from codeshelf.cli.options import JsonOption
from codeshelf.cli.output import domain_errors, emit, money_text, say, table
from codeshelf.kit.money import Money

product_app = typer.Typer(no_args_is_help=True, help="The catalog of products.")


def _product_json(product: Any) -> dict[str, Any]:
    return {
        "sku": product.sku,
        "platform": product.platform,
        "region": product.region,
        "face_value": face_value(product).as_json(),
        "price": Money(product.price_minor, product.price_currency).as_json(),
    }


@product_app.command("add")
def product_add(
    sku: str,
    platform: Annotated[str, typer.Option()] = "psn",
    region: Annotated[str, typer.Option()] = ...,  # type: ignore[assignment]
    face_value_: Annotated[str, typer.Option("--face-value")] = ...,  # type: ignore[assignment]
    currency: Annotated[str, typer.Option(help="Currency of the face value.")] = ...,  # type: ignore[assignment]
    price: Annotated[str, typer.Option(help="Default wholesale price.")] = ...,  # type: ignore[assignment]
    price_currency: Annotated[
        str | None, typer.Option(help="Currency of the price (default: --currency).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Add a product, e.g. psn-us-50 --region US --face-value 50 --currency USD --price 46.50."""
    with domain_errors(), context.database().session() as session:
        product = catalog.add_product(
            session,
            sku=sku,
            platform=platform,
            region=region,
            face_value=face_value_,
            currency=currency,
            price=price,
            price_currency=price_currency,
        )
        data = _product_json(product)
    emit(data, as_json, lambda: say(f"added {sku}"))


@product_app.command("list")
def product_list(as_json: JsonOption = False) -> None:
    """Every product with its default price."""
    with context.database().read_session() as session:
        data = [_product_json(product) for product in catalog.list_products(session)]
    rows = [
        (p["sku"], p["platform"], p["region"], money_text(p["face_value"]), money_text(p["price"]))
        for p in data
    ]
    emit(
        data,
        as_json,
        lambda: table("products", ["sku", "platform", "region", "face value", "price"], rows),
    )
