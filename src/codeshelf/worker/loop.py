"""The loop: pass after pass until told to stop; it waits only when a pass had nothing to send.

On PostgreSQL it waits on ``LISTEN``: the commit that queues a delivery wakes it at once (the
NOTIFY of migration 0006). On SQLite it watches for commits of other connections and wakes when
one has made a delivery due. Either way it looks again after ``worker_poll_seconds`` at the
latest: retries falling due, backorders' deadlines, and any wake-up missed.

Several workers may run against one PostgreSQL: each delivery is held by one at a time, and the
stock pass locks what it serves.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import closing
from datetime import datetime, timedelta

import httpx

from codeshelf.kit.clock import utcnow
from codeshelf.kit.db import Database
from codeshelf.kit.settings import Settings
from codeshelf.kit.vault import Vault
from codeshelf.kit.wakeup import waiter
from codeshelf.webhooks import delivery
from codeshelf.worker import passes

PURGE_EVERY = timedelta(hours=1)
# Stock loaded without an import (claims and backorders waiting for it), and the stock floors.
STOCK_EVERY_S = 1.0


def run(
    settings: Settings,
    db: Database,
    vault: Vault,
    *,
    once: bool = False,
    batch: int = 50,
    stopping: Callable[[], bool] = lambda: False,
    report: passes.Report = lambda _line: None,
) -> None:
    """Run passes until ``stopping()`` (or after one pass, with ``once``)."""
    last_purge: datetime | None = None
    last_floors: float | None = None

    def due() -> bool:
        return delivery.any_due(db)

    with (
        closing(waiter(db, delivery.CHANNEL, due, listen=not once)) as alarm,  # before 1st pass
        httpx.Client(timeout=delivery.TIMEOUT, follow_redirects=False) as client,
    ):
        while not stopping():
            # Once a second, not every pass: a woken worker may pass hundreds of times a second.
            if last_floors is None or time.monotonic() - last_floors >= STOCK_EVERY_S:
                passes.serve_waiting(db, report)
                passes.advance_stock_floors(db)
                last_floors = time.monotonic()
            sent = passes.send_webhooks(db, vault, client, settings, batch)
            now = utcnow()
            if last_purge is None or now - last_purge >= PURGE_EVERY:
                passes.purge(db, now, timedelta(days=settings.event_retention_days), report)
                last_purge = now
            if sent:
                report(f"attempted {sent} deliveries")
            if once:
                return
            if not sent:
                alarm.wait(settings.worker_poll_seconds)
