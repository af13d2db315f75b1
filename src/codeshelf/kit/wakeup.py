"""Waiting for work: woken the moment a commit queues some, or after the poll interval at the
latest.

On PostgreSQL a ``LISTEN``-ing connection is woken by the ``NOTIFY`` the commit sends. SQLite has
no notifications: a ``Watcher`` reads ``PRAGMA data_version`` every few milliseconds (it changes
when another connection commits; in WAL mode reading it touches no disk), and only when it has
changed asks whether work is due (one indexed read). Either way a wake-up is only a hint to look
now: whoever waits still finds its work by querying, so one lost (a dropped connection, a worker
that was busy) delays work by one poll interval at most and loses nothing.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from codeshelf.kit.db import Database

log = logging.getLogger("codeshelf.worker")


class Sleeper:
    """Waits the whole timeout (SQLite, or a single pass)."""

    def wait(self, timeout: float) -> bool:
        """Sleep ``timeout`` seconds; False: nothing woke it."""
        time.sleep(timeout)
        return False

    def close(self) -> None:
        pass


class Listener(Sleeper):
    """``LISTEN``s on ``channel`` from a connection of its own (the engine's driver, psycopg,
    with the engine's connection arguments), opened at once, so that whatever commits from then
    on wakes it; reopened when it breaks."""

    def __init__(self, db: Database, channel: str) -> None:
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", channel):
            raise ValueError(f"not a plain channel name: {channel!r}")
        self._db = db
        self._channel = channel
        self._dbapi: Any = db.engine.dialect.loaded_dbapi
        self._conn: Any = None  # a psycopg connection in autocommit, while listening
        self._listen()

    def _listen(self) -> bool:
        engine = self._db.engine
        args, kwargs = engine.dialect.create_connect_args(engine.url)
        try:
            conn = self._dbapi.connect(*args, **kwargs, autocommit=True)
            conn.execute(f"LISTEN {self._channel}")
        except self._dbapi.Error as exc:
            log.warning("cannot LISTEN on %s (%s); polling meanwhile", self._channel, exc)
            return False
        self._conn = conn
        return True

    def wait(self, timeout: float) -> bool:
        """Until a notification arrives (True) or ``timeout`` seconds pass (False). Also True
        right after (re)connecting or losing the connection: what committed while nobody
        listened may be waiting."""
        if self._conn is None:
            return self._listen() or super().wait(timeout)
        try:
            woken = bool(list(self._conn.notifies(timeout=timeout, stop_after=1)))
            if woken:  # one look serves every commit so far
                list(self._conn.notifies(timeout=0))
        except self._dbapi.Error as exc:
            log.warning("lost the LISTEN connection (%s); reconnecting", exc)
            self.close()
            return True
        return woken

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class Watcher(Sleeper):
    """SQLite: wakes when another connection has committed and ``due()`` then holds."""

    INTERVAL = 0.025  # seconds between two looks at data_version (idle: under 1 % of a core)

    def __init__(self, db: Database, due: Callable[[], bool]) -> None:
        self._due = due
        path = Path(db.engine.url.database or "").absolute()  # never created here: mode=rw
        self._conn = sqlite3.connect(f"{path.as_uri()}?mode=rw", uri=True, isolation_level=None)
        self._seen = self._version()

    def _version(self) -> int:
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(min(self.INTERVAL, left))
            version = self._version()
            if version != self._seen:
                self._seen = version
                if self._due():
                    return True
        return False

    def close(self) -> None:
        self._conn.close()


def waiter(db: Database, channel: str, due: Callable[[], bool], *, listen: bool = True) -> Sleeper:
    """A ``Listener`` on ``channel`` on PostgreSQL, a ``Watcher`` asking ``due`` on SQLite;
    a plain ``Sleeper`` if not ``listen`` (a single pass)."""
    if not listen:
        return Sleeper()
    if db.is_sqlite:
        return Watcher(db, due)
    return Listener(db, channel)
