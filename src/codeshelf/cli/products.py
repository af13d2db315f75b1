"""``codeshelf product …``: the catalog: products, their default price, retiring them."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from codeshelf.catalog import service as catalog
from codeshelf.catalog.service import face_value
from codeshelf.cli import context
from codeshelf.cli.options import JsonOption
from codeshelf.cli.output import domain_errors, emit, money_text, say, table
from codeshelf.kit.clock import utcnow
from codeshelf.kit.money import Money

product_app = typer.Typer(no_args_is_help=True, help="The catalog of products.")


def _product_json(product: Any) -> dict[str, Any]:
    return {
        "sku": product.sku,
        "platform": product.platform,
        "region": product.region,
        "face_value": face_value(product).as_json(),
        "price": Money(product.price_minor, product.price_currency).as_json(),
        "retired_at": product.retired_at,
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
            actor=context.actor(session),
        )
        data = _product_json(product)
    emit(data, as_json, lambda: say(f"added {sku}"))


@product_app.command("list")
def product_list(as_json: JsonOption = False) -> None:
    """Every product with its default price (retired ones too, with the date)."""
    with context.database().read_session() as session:
        data = [_product_json(product) for product in catalog.list_products(session)]
    rows = [
        (
            p["sku"],
            p["platform"],
            p["region"],
            money_text(p["face_value"]),
            money_text(p["price"]),
            "" if p["retired_at"] is None else f"{p['retired_at']:%Y-%m-%d}",
        )
        for p in data
    ]
    columns = ["sku", "platform", "region", "face value", "price", "retired"]
    emit(data, as_json, lambda: table("products", columns, rows))


@product_app.command("price")
def product_price(
    sku: str,
    amount: Annotated[str, typer.Argument(help="The new default price, e.g. 47.00.")],
    as_json: JsonOption = False,
) -> None:
    """Change a product's default price (orders already placed keep theirs; partner prices
    still override it)."""
    with domain_errors(), context.database().session() as session:
        change = catalog.set_default_price(session, sku, amount, context.actor(session))
    data = {"sku": sku, "previous": change.previous.as_json(), "price": change.price.as_json()}
    message = (
        f"{sku} now costs {change.price} (was {change.previous})"
        if change.changed
        else f"{sku} already costs {change.price}"
    )
    emit(data, as_json, lambda: say(message))


@product_app.command("retire")
def product_retire(sku: str, as_json: JsonOption = False) -> None:
    """Stop selling a product: it leaves the inventory and new orders for it are refused; its
    past orders and codes stay. Refused while backorders wait for it."""
    with domain_errors(), context.database().session() as session:
        product = catalog.retire_product(session, sku, context.actor(session), utcnow())
        data = _product_json(product)
    emit(data, as_json, lambda: say(f"retired {sku}: no longer listed or sold"))


@product_app.command("unretire")
def product_unretire(sku: str, as_json: JsonOption = False) -> None:
    """Sell a retired product again, with the stock it still has."""
    with domain_errors(), context.database().session() as session:
        product = catalog.unretire_product(session, sku, context.actor(session))
        data = _product_json(product)
    emit(data, as_json, lambda: say(f"{sku} is on sale again"))
