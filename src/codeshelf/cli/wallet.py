"""``codeshelf wallet …``: funding partner wallets, with four eyes on large deposits.

``wallet deposit PARTNER_ID AMOUNT --currency … --reference …`` credits the wallet, or (above
``CODESHELF_DEPOSIT_APPROVAL_OVER`` for its currency) files a request that a second person
decides with ``wallet deposit approve|decline``, naming themselves with ``codeshelf --as``.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from sqlalchemy.orm import Session
from typer import _click  # the Click Typer vendors: its commands' Context
from typer.core import TyperGroup

from codeshelf.cli import context
from codeshelf.cli.options import JsonOption
from codeshelf.cli.output import domain_errors, emit, fail, say, table
from codeshelf.kit.clock import utcnow
from codeshelf.kit.money import InvalidMoneyError, Money
from codeshelf.members.roles import StaffPermission
from codeshelf.partners import service as partners
from codeshelf.wallet import service as wallet

wallet_app = typer.Typer(no_args_is_help=True, help="Partner wallets.")

ASK = "ask"  # the hidden command `wallet deposit PARTNER_ID AMOUNT …` runs


class _DepositGroup(TyperGroup):
    """``deposit approve|decline|pending …`` are commands; anything else is a deposit's
    arguments (``deposit PARTNER_ID AMOUNT …``, as before four eyes)."""

    def parse_args(self, ctx: _click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = [ASK, *args]
        return super().parse_args(ctx, args)


deposit_app = typer.Typer(
    cls=_DepositGroup,
    no_args_is_help=True,
    help="Credit a partner's wallet: codeshelf wallet deposit PARTNER_ID AMOUNT --currency USD "
    "--reference REF [--json] (idempotent on --reference). Above CODESHELF_DEPOSIT_APPROVAL_OVER "
    "for its currency the deposit waits for a second finance or admin person: approve, decline.",
)
wallet_app.add_typer(deposit_app, name="deposit")


def _person(session: Session, *, required: bool) -> str:
    """Who asks or decides: a finance or admin member named with ``--as``; asking without one
    is ``operator:cli``, but deciding needs a person (four eyes)."""
    named = "deciding a deposit (four eyes)" if required else ""
    return context.actor_with(session, StaffPermission.FINANCE, named=named)


@deposit_app.command(ASK, hidden=True)
def wallet_deposit(
    partner_id: str,
    amount: str,
    currency: Annotated[str, typer.Option()] = ...,  # type: ignore[assignment]
    reference: Annotated[str, typer.Option(help="Unique; a repeat credits nothing.")] = ...,  # type: ignore[assignment]
    as_json: JsonOption = False,
) -> None:
    """Credit a partner's wallet (idempotent on --reference), or ask a second person to."""
    try:
        money = Money.parse(amount, currency)
    except InvalidMoneyError as exc:
        fail(str(exc))
    thresholds = context.settings().deposit_thresholds()
    with domain_errors(), context.database().session() as session:
        partner = partners.get_partner(session, partner_id)
        actor = _person(session, required=False)
        outcome = wallet.ask_deposit(
            session, partner, money, reference, actor, thresholds, utcnow()
        )
    if outcome.credited is None:
        _emit_pending(outcome, as_json)
        return
    result = outcome.credited
    data = {
        "status": "credited",
        "partner_id": partner_id,
        "transaction_id": result.transaction.public_id,
        "reference": reference,
        "amount": money.as_json(),
        "created": outcome.created,
        "balance": result.balance.as_json(),
    }
    verb = "deposited" if outcome.created else "already deposited (nothing changed):"
    emit(data, as_json, lambda: say(f"{verb} {money}; balance {result.balance}"))


def _emit_pending(outcome: wallet.DepositOutcome, as_json: bool) -> None:
    request = outcome.request
    assert request is not None
    data = {**_request_json(request), "created": outcome.created}
    again = "" if outcome.created else " (already asked: nothing changed)"
    emit(
        data,
        as_json,
        lambda: say(
            f"{request.amount} for {request.partner_id} waits for a second person{again}: "
            f"request {request.id}; a finance or admin member other than {request.requested_by} "
            f"approves it with `codeshelf --as EMAIL wallet deposit approve {request.id}`"
        ),
    )


def _request_json(request: wallet.RequestedDeposit) -> dict[str, Any]:
    return {
        "status": request.status,
        "request_id": request.id,
        "partner_id": request.partner_id,
        "reference": request.reference,
        "amount": request.amount.as_json(),
        "requested_by": request.requested_by,
        "requested_at": request.requested_at,
        "decided_by": request.decided_by,
        "decided_at": request.decided_at,
        "note": request.note,
        "transaction_id": request.transaction_id,
    }


@deposit_app.command("approve")
def deposit_approve(request_id: str, as_json: JsonOption = False) -> None:
    """Approve a pending deposit: the wallet is credited.

    Needs `codeshelf --as EMAIL`: a finance or admin member who did not ask for it.
    """
    with domain_errors(), context.database().session() as session:
        actor = _person(session, required=True)
        outcome = wallet.approve_deposit(session, request_id, actor, utcnow())
    request, credited = outcome.request, outcome.credited
    assert request is not None and credited is not None
    data = {**_request_json(request), "balance": credited.balance.as_json()}
    emit(
        data,
        as_json,
        lambda: say(
            f"approved {request_id}: deposited {request.amount}; balance {credited.balance}"
        ),
    )


@deposit_app.command("decline")
def deposit_decline(
    request_id: str,
    note: Annotated[str, typer.Option("--note", help="Why (kept with the request).")],
    as_json: JsonOption = False,
) -> None:
    """Decline a pending deposit with a note: nothing is credited.

    Needs `codeshelf --as EMAIL`: a finance or admin member who did not ask for it.
    """
    with domain_errors(), context.database().session() as session:
        actor = _person(session, required=True)
        request = wallet.decline_deposit(session, request_id, actor, note, utcnow())
    emit(_request_json(request), as_json, lambda: say(f"declined {request_id}: {request.note}"))


@deposit_app.command("pending")
def deposit_pending(as_json: JsonOption = False) -> None:
    """The deposits waiting for a second person, oldest first."""
    with context.database().read_session() as session:
        waiting = wallet.pending_deposits(session)
    rows = [
        (r.id, r.partner_id, r.partner_name, str(r.amount), r.reference, r.requested_by,
         r.requested_at)
        for r in waiting
    ]  # fmt: skip
    headers = ["request", "partner", "name", "amount", "reference", "asked by", "asked at"]
    emit(
        [_request_json(r) for r in waiting],
        as_json,
        lambda: table("pending deposits", headers, rows),
    )
