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
        report = service.operator_day(session, when)
    emit(_json(report), as_json, lambda: _render(report))
    if not report.ok:
        raise typer.Exit(1)


def _json(report: service.OperatorDay) -> dict[str, Any]:
    partners: dict[str, dict[str, Any]] = {}
    for line in report.lines:
        entry = partners.setdefault(
            line.partner_id,
            {"partner_id": line.partner_id, "name": line.name, "currencies": [], "problems": []},
        )
        money = {name: money.as_json() for name, money in line.figures.money().items()}
        entry["currencies"].append({"currency": line.currency} | money)
        entry["problems"] += [f"{line.currency}: {problem}" for problem in line.problems]
    return {
        "date": report.day.isoformat(),
        "ok": report.ok,
        "mismatches": report.mismatches,
        "partners": list(partners.values()),
    }


HEADERS = [
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
    "check",
]


def _render(report: service.OperatorDay) -> None:
    rows = [
        (
            line.partner_id,
            line.currency,
            *(
                money.amount
                for name, money in line.figures.money().items()
                if name not in ("held_opening", "captured")
            ),
            "MISMATCH" if line.mismatch else "ok",
        )
        for line in report.lines
    ]
    table(f"Reconciliation {report.day.isoformat()} (UTC)", HEADERS, rows)
    if report.ok:
        say("no mismatches: the ledger agrees with orders, deliveries and stock")
    for line in report.lines:
        for problem in line.problems:
            say(
                f"{line.partner_id} {line.currency}: {problem}",
                console=err,
                label="mismatch: ",
                style="red",
            )
    for problem in report.mismatches:
        say(problem, console=err, label="mismatch: ", style="red")
