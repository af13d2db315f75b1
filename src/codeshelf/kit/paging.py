"""Cursor pagination: a page is ``limit`` rows, and its ``next_cursor`` is null exactly when
nothing follows it. Lists fetch one row more than they show (``fetch_size``) to know, so a last
page that happens to be full still says it is the last."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

Row = TypeVar("Row")


def fetch_size(limit: int) -> int:
    """How many rows to read for a page of ``limit``: one more, to see whether more follow."""
    return limit + 1


def cut(
    rows: Sequence[Row], limit: int, cursor_of: Callable[[Row], str | int]
) -> tuple[list[Row], str | None]:
    """The page of ``rows`` (read with ``fetch_size(limit)``) and the cursor to the next page:
    the last shown row's, or None when the extra row was not there."""
    shown = list(rows[:limit])
    if len(rows) <= limit or not shown:
        return shown, None
    return shown, str(cursor_of(shown[-1]))
