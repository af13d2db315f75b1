"""``codeshelf price …``: partner-specific prices."""

from __future__ import annotations

import typer

from codeshelf.catalog import service as catalog
from codeshelf.cli import context
from codeshelf.cli.options import JsonOption
from codeshelf.cli.output import domain_errors, emit, say, table
from codeshelf.members.roles import StaffPermission
from codeshelf.partners import service as partners

price_app = typer.Typer(no_args_is_help=True, help="Partner-specific prices.")


@price_app.command("set")
def price_set(partner_id: str, sku: str, price: str, as_json: JsonOption = False) -> None:
    """Set a partner-specific price overriding the product's default."""
    with domain_errors(), context.database().session() as session:
        actor = context.actor_with(session, StaffPermission.FINANCE)
        partner = partners.get_partner(session, partner_id)
        money = catalog.set_partner_price(session, partner, sku, price, actor)
    data = {"partner_id": partner_id, "sku": sku, "price": money.as_json()}
    emit(data, as_json, lambda: say(f"{partner_id} pays {money} for {sku}"))


@price_app.command("clear")
def price_clear(partner_id: str, sku: str, as_json: JsonOption = False) -> None:
    """Remove a partner-specific price: the partner pays the product's default price again."""
    with domain_errors(), context.database().session() as session:
        actor = context.actor_with(session, StaffPermission.FINANCE)
        partner = partners.get_partner(session, partner_id)
        money = catalog.clear_partner_price(session, partner, sku, actor)
    data = {"partner_id": partner_id, "sku": sku, "price": money.as_json()}
    emit(data, as_json, lambda: say(f"{partner_id} pays the default {money} for {sku}"))


@price_app.command("list")
def price_list(partner_id: str, as_json: JsonOption = False) -> None:
    """A partner's own prices, beside each product's default."""
    with domain_errors(), context.database().read_session() as session:
        partner = partners.get_partner(session, partner_id)
        lines = catalog.partner_prices(session, partner)
    data = [
        {"sku": line.sku, "price": line.price.as_json(), "default": line.default.as_json()}
        for line in lines
    ]
    rows = [(line.sku, line.price, line.default) for line in lines]
    emit(data, as_json, lambda: table(f"{partner_id} prices", ["sku", "price", "default"], rows))
