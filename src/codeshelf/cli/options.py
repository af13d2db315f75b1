"""Options several commands share, defined once."""

from __future__ import annotations

import getpass
from typing import Annotated

import typer

from codeshelf.cli.output import fail
from codeshelf.kit.errors import InvalidInputError
from codeshelf.operators import service as operators

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
OperatorOption = Annotated[
    str | None,
    typer.Option(
        "--operator",
        envvar="CODESHELF_OPERATOR",
        help="Who decides (written to the audit log); default: your login name.",
    ),
]
RequiredReason = Annotated[str, typer.Option("--reason", help="Why (kept in the audit log).")]


def operator_name(name: str | None) -> str:
    """The audit log's actor for ``--operator`` (or the login name): ``operator:<name>``."""
    try:
        return f"operator:{operators.check_name(name or getpass.getuser())}"
    except InvalidInputError as exc:
        fail(f"--operator: {exc.detail}")
