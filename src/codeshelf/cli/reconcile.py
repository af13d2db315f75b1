"""``codeshelf reconcile --date …``: a day's money per partner and currency, and mismatches."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any

import typer

from codeshelf.cli import context
from codeshelf.cli.options import JsonOption
from codeshelf.cli.output import emit, err, say, table
from codeshelf.kit.clock import utcnow
from codeshelf.reconciliation import service


def reconcile(
    day: Annotated[
        datetime | None,
        typer.Option("--date", formats=["%Y-%m-%d"], help="A UTC day (default: yesterday)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Check a day's ledger against its orders, delivered codes and imported stock; exit 1 on
    any mismatch. Prints each live partner's figures per currency."""
    when: date = day.date() if day is not None else (utcnow() - timedelta(days=1)).date()
    with context.database().read_session() as session:
        figures, problems = service.operator_day(session, when)
    data: dict[str, Any] = {
        "date": when.isoformat(),
        "ok": not problems,
        "mismatches": problems,
        "partners": [
            {
                "partner_id": partner.partner_id,
                "name": partner.name,
                "currencies": [
                    {"currency": line.currency}
                    | {name: money.as_json() for name, money in line.money().items()}
                    for line in partner.currencies
                ],
            }
            for partner in figures
        ],
    }

    def render() -> None:
        headers = [
            "partner",
            "cur",
            "opening",
            "deposits",
            "debits",
            "holds",
            "releases",
            "refunds",
            "closing",
            "held",
        ]
        rows = [
            (
                partner.partner_id,
                line.currency,
                *(
                    money.amount
                    for name, money in line.money().items()
                    if name not in ("held_opening", "captured")
                ),
            )
            for partner in figures
            for line in partner.currencies
        ]
        table(f"Reconciliation {when.isoformat()} (UTC)", headers, rows)
        if not problems:
            say("no mismatches: the ledger agrees with orders, deliveries and stock")
        for problem in problems:
            say(problem, console=err, label="mismatch: ", style="red")

    emit(data, as_json, render)
    if problems:
        raise typer.Exit(1)
