"""``codeshelf price …``: partner-specific prices."""

from __future__ import annotations

import typer

from codeshelf.catalog import service as catalog
from codeshelf.cli import context
from codeshelf.cli.options import JsonOption
from codeshelf.cli.output import domain_errors, emit, say
from codeshelf.partners import service as partners

price_app = typer.Typer(no_args_is_help=True, help="Partner-specific prices.")


@price_app.command("set")
def price_set(partner_id: str, sku: str, price: str, as_json: JsonOption = False) -> None:
    """Set a partner-specific price overriding the product's default."""
    with domain_errors(), context.database().session() as session:
        partner = partners.get_partner(session, partner_id)
        money = catalog.set_partner_price(session, partner, sku, price)
    data = {"partner_id": partner_id, "sku": sku, "price": money.as_json()}
    emit(data, as_json, lambda: say(f"{partner_id} pays {money} for {sku}"))
