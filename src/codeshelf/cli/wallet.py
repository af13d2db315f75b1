"""``codeshelf wallet …``: funding partner wallets."""

from __future__ import annotations

from typing import Annotated

import typer

from codeshelf.cli import context
from codeshelf.cli.options import JsonOption
from codeshelf.cli.output import domain_errors, emit, fail, say
from codeshelf.kit.money import InvalidMoneyError, Money
from codeshelf.partners import service as partners
from codeshelf.wallet import service as wallet

wallet_app = typer.Typer(no_args_is_help=True, help="Partner wallets.")


@wallet_app.command("deposit")
def wallet_deposit(
    partner_id: str,
    amount: str,
    currency: Annotated[str, typer.Option()] = ...,  # type: ignore[assignment]
    reference: Annotated[str, typer.Option(help="Unique; a repeat credits nothing.")] = ...,  # type: ignore[assignment]
    as_json: JsonOption = False,
) -> None:
    """Credit a partner's wallet (idempotent on --reference)."""
    try:
        money = Money.parse(amount, currency)
    except InvalidMoneyError as exc:
        fail(str(exc))
    with domain_errors(), context.database().session() as session:
        partner = partners.get_partner(session, partner_id)
        result = wallet.deposit(session, partner, money, reference)
    data = {
        "partner_id": partner_id,
        "transaction_id": result.transaction.public_id,
        "reference": reference,
        "amount": money.as_json(),
        "created": result.created,
        "balance": result.balance.as_json(),
    }
    verb = "deposited" if result.created else "already deposited (nothing changed):"
    emit(data, as_json, lambda: say(f"{verb} {money}; balance {result.balance}"))
