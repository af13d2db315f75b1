"""CSV for people's spreadsheets: text that a partner or an operator typed is neutralised
against formula injection (OWASP: a leading =, +, -, @, tab or carriage return gets an
apostrophe); ids, amounts and times the system made are written as they are (a negative
amount keeps its minus)."""

from __future__ import annotations

import csv
import io
from collections.abc import Collection, Iterable, Sequence

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe(cell: str) -> str:
    return "'" + cell if cell[:1] in FORMULA_STARTS else cell


def table(
    header: Sequence[str], rows: Iterable[Sequence[object]], typed: Collection[str] = ()
) -> str:
    """The header and rows as CSV text; the columns named in ``typed`` (free text someone
    typed: a client_order_id, a reference) go through ``safe``."""
    guarded = {index for index, name in enumerate(header) if name in typed}
    out = io.StringIO()
    writer = csv.writer(out)  # RFC 4180 lines: a field with \r or \n in it is quoted
    writer.writerow(header)
    for row in rows:
        writer.writerow(
            [safe(str(cell)) if index in guarded else cell for index, cell in enumerate(row)]
        )
    return out.getvalue()
