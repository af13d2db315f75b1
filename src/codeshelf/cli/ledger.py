"""``codeshelf ledger check``: every invariant of money and stock."""

from __future__ import annotations

import typer

from codeshelf import invariants
from codeshelf.cli import context
from codeshelf.cli.options import JsonOption
from codeshelf.cli.output import emit, err, say

ledger_app = typer.Typer(no_args_is_help=True, help="The ledger and its invariants.")


@ledger_app.command("check")
def ledger_check(as_json: JsonOption = False) -> None:
    """Verify every invariant of money and stock; exit 1 on any violation."""
    with context.database().read_session() as session:
        problems = invariants.check_all(session)
    data = {"ok": not problems, "violations": problems}

    def render() -> None:
        if not problems:
            say("ledger check: every invariant holds")
        for problem in problems:
            say(problem, console=err, label="violation: ", style="red")

    emit(data, as_json, render)
    if problems:
        raise typer.Exit(1)
