"""Printing for the CLI: one JSON document on stdout with --json, rich tables otherwise."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from codeshelf.kit.errors import DomainError

out = Console()
err = Console(stderr=True)


def emit(data: Any, as_json: bool, render: Callable[[], None]) -> None:
    if as_json:
        typer.echo(json.dumps(data, indent=2, default=str))
    else:
        render()


def money_text(money: dict[str, str]) -> str:
    """``{"amount": "46.50", "currency": "USD"}`` as ``46.50 USD``."""
    return f"{money['amount']} {money['currency']}"


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    grid = Table(title=title)
    for column in columns:
        grid.add_column(column, overflow="fold")  # ids wrap on narrow terminals, never "…"
    for row in rows:
        grid.add_row(*(Text(str(cell)) for cell in row))
    out.print(grid)


def say(text: str, *, console: Console = out, label: str = "", style: str = "") -> None:
    """Print text verbatim: operator input such as "[/b]" is never read as rich markup."""
    line = Text.assemble((label, style), text) if label else Text(text)
    console.print(line, highlight=False, soft_wrap=True)


def fail(message: str, code: int = 1) -> NoReturn:
    say(message, console=err, label="error: ", style="bold red")
    raise typer.Exit(code)


@contextmanager
def domain_errors() -> Iterator[None]:
    """Turn a refusal from a service into a message on stderr and exit code 1."""
    try:
        yield
    except DomainError as exc:
        fail(exc.detail)
