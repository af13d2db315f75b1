"""Where the events follower keeps its place: the id of the last event handled."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Protocol


class CursorStore(Protocol):
    """``load()`` the last event id handled (None: from the start); ``save(id)`` after each."""

    def load(self) -> str | None: ...

    def save(self, cursor: str) -> None: ...


class FileCursor:
    """The cursor in a small text file, replaced atomically (a crash leaves the old or the
    new id, never half of one)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def load(self) -> str | None:
        try:
            text = self.path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return text or None

    def save(self, cursor: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(cursor + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


class MemoryCursor:
    """The cursor in memory (for tests, or a caller that stores it itself afterwards)."""

    def __init__(self, cursor: str | None = None) -> None:
        self.cursor = cursor

    def load(self) -> str | None:
        return self.cursor

    def save(self, cursor: str) -> None:
        self.cursor = cursor


class CallbackCursor:
    """The cursor wherever the caller keeps it: ``load`` and ``save`` are its own functions
    (a row of the reseller's database, say)."""

    def __init__(self, load: Callable[[], str | None], save: Callable[[str], None]) -> None:
        self._load, self._save = load, save

    def load(self) -> str | None:
        return self._load()

    def save(self, cursor: str) -> None:
        self._save(cursor)


def as_store(cursor: CursorStore | str | os.PathLike[str]) -> CursorStore:
    """A store, or a file path to keep the cursor in."""
    if isinstance(cursor, str | os.PathLike):
        return FileCursor(cursor)
    return cursor
