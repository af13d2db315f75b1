"""``codeshelf audit``: search the audit log (the console's Audit log page, from a shell)."""

from __future__ import annotations

import json
import sys
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

import typer

from codeshelf.audit import service as audit
from codeshelf.audit.models import AuditEvent
from codeshelf.cli import context
from codeshelf.cli.options import JsonOption
from codeshelf.cli.output import emit, table
from codeshelf.kit import csvs
from codeshelf.members.service import staff

COLUMNS = ["occurred_at", "actor", "person", "action", "partner_id", "subject", "count", "details"]


def _day(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.combine(date.fromisoformat(value), time(), UTC)
    except ValueError:
        raise typer.BadParameter("a day as YYYY-MM-DD", param_hint=option) from None


def _row(event: AuditEvent, names: dict[str, str]) -> dict[str, Any]:
    return {
        "occurred_at": event.occurred_at.isoformat(),
        "actor": event.actor,
        "person": names.get(event.actor),
        "action": event.action,
        "partner_id": event.partner_public_id,
        "subject": event.subject,
        "count": event.count,
        "details": event.details,
    }


def _cell(row: dict[str, Any], column: str) -> object:
    value = row[column]
    if column == "details" and value:
        return json.dumps(value, sort_keys=True)
    return "" if value is None else value


def audit_search(
    actor: Annotated[str | None, typer.Option(help="A prefix: staff:, partner:ptr_…")] = None,
    partner: Annotated[str | None, typer.Option(help="A partner id.")] = None,
    action: Annotated[str | None, typer.Option(help="A prefix: claim., wallet.deposit")] = None,
    since: Annotated[str | None, typer.Option(help="First day (UTC), YYYY-MM-DD.")] = None,
    until: Annotated[str | None, typer.Option(help="Last day (UTC), YYYY-MM-DD.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 100,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV on stdout.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Search the audit log, newest first; each person named by e-mail beside their id."""
    start, end = _day(since, "--since"), _day(until, "--until")
    with context.database().read_session() as session:
        found = audit.search(
            session, actor=actor, partner_public_id=partner, action=action, since=start,
            until=end + timedelta(days=1) if end else None, limit=limit,
        )  # fmt: skip
        names = staff.names(session)
        rows = [_row(event, names) for event in found]
    if as_csv:
        typed = {"actor", "person", "subject", "details"}
        cells = [[_cell(r, c) for c in COLUMNS] for r in rows]
        sys.stdout.write(csvs.table(COLUMNS, cells, typed))
        return
    shown = [[r[c] if r[c] is not None else "" for c in COLUMNS[:-1]] for r in rows]
    emit(rows, as_json, lambda: table("audit log", COLUMNS[:-1], shown))
