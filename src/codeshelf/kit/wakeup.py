"""Waiting for work: woken the moment a commit queues some (PostgreSQL ``LISTEN``/``NOTIFY``),
or after the poll interval at the latest.

A notification is only a hint to look now: whoever waits still finds its work by querying, so a
notification lost (a dropped connection, a worker that was busy) delays work by one poll
interval at most and loses nothing. SQLite has no notifications: there the wait is a sleep.
"""

from __future__ import annotations

import logging
import time

import psycopg
from psycopg import sql

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
    """``LISTEN``s on ``channel`` from a connection of its own, opened at once (so that
    whatever commits from then on wakes it), and reopened when it breaks."""

    def __init__(self, db: Database, channel: str) -> None:
        self._db = db
        self._channel = channel
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self._listen()

    def _listen(self) -> bool:
        engine = self._db.engine
        args, kwargs = engine.dialect.create_connect_args(engine.url)
        try:
            conn = psycopg.connect(*args, **kwargs, autocommit=True)
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
        except psycopg.Error as exc:
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
        except psycopg.Error as exc:
            log.warning("lost the LISTEN connection (%s); reconnecting", exc)
            self.close()
            return True
        return woken

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def waiter(db: Database, channel: str, *, listen: bool = True) -> Sleeper:
    """A ``Listener`` on PostgreSQL (if ``listen``), else a ``Sleeper``."""
    if db.is_sqlite or not listen:
        return Sleeper()
    return Listener(db, channel)
