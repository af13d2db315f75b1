"""A half-open span of time [start, end): the day a check looks at, or (None) all of time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, true


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime

    def holds(self, column: Any) -> ColumnElement[bool]:
        return and_(column >= self.start, column < self.end)


def within(window: Window | None, column: Any) -> ColumnElement[bool]:
    """``column`` inside the window; always true without one."""
    return true() if window is None else window.holds(column)
