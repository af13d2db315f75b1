"""The loop: pass after pass until told to stop; it waits only when a pass had nothing to send.

On PostgreSQL it waits on ``LISTEN``: the commit that queues a delivery wakes it at once (the
NOTIFY of migration 0006). On SQLite it watches for commits of other connections and wakes when
one has made a delivery due. Either way it looks again after ``worker_poll_seconds`` at the
latest: retries falling due, backorders' deadlines, and any wake-up missed.

Several workers may run against one PostgreSQL: each delivery is held by one at a time, the
stock pass locks what it serves, and each import job is taken by one worker (``worker.imports``:
in a thread, so a long import never holds the loop back). Webhooks go out in lanes, one per
endpoint (``webhooks.lanes``): a pass starts them and never waits for one, so a slow receiver
holds up only its own queue.

Told to stop, the loop ends its pass; the lanes start no new attempt, those under way end (by
their deadline) and are recorded, the rest is released to the queue; a running import is rolled
back and queued again. It waits up to ``shutdown_grace_seconds`` for that.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from datetime import datetime, timedelta

from codeshelf.kit.clock import utcnow
from codeshelf.kit.db import Database
from codeshelf.kit.settings import Settings
from codeshelf.kit.vault import Vault
from codeshelf.kit.wakeup import waiter
from codeshelf.webhooks import delivery, lanes
from codeshelf.worker import imports, passes

PURGE_EVERY = timedelta(hours=1)


@contextmanager
def closing_runner(runner: imports.ImportRunner) -> Iterator[None]:
    """On the way out, a running import is stopped (rolled back and queued again)."""
    try:
        yield
    finally:
        runner.stop()


@contextmanager
def stopping_lanes(sending: lanes.Lanes, grace: float) -> Iterator[lanes.Lanes]:
    """On the way out, the deliveries under way are finished and recorded, the rest released."""
    try:
        yield sending
    finally:
        sending.stop(grace)


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

    runner = imports.ImportRunner(settings, db, vault, report)
    allow_private = settings.webhook_allow_private
    with (
        delivery.client(allow_private=allow_private) as client,
        stopping_lanes(
            lanes.Lanes(db, vault, client, allow_private=allow_private, batch=batch),
            settings.shutdown_grace_seconds,
        ) as sending,
        # Due deliveries of endpoints without a lane here wake it (their lanes go on alone).
        closing(
            waiter(
                db,
                delivery.CHANNEL,
                lambda: delivery.any_due(db, among=sending.others()),
                listen=not once,
            )
        ) as alarm,  # before the first pass
        closing_runner(runner),
    ):
        if once:  # one queued import, to its end, before the pass that serves its stock
            imports.run_next(db, vault, settings, report)
        while not stopping():
            # Once a second, not every pass: a woken worker may pass hundreds of times a second.
            if last_floors is None or time.monotonic() - last_floors >= STOCK_EVERY_S:
                passes.serve_waiting(db, report)
                passes.advance_stock_floors(db)
                if not once:
                    runner.step()  # the next import job, in a thread: the loop goes on
                last_floors = time.monotonic()
            if once:
                sent = passes.send_webhooks(db, vault, client, settings, batch)
            else:
                sent = passes.start_webhooks(sending)
            now = utcnow()
            if last_purge is None or now - last_purge >= PURGE_EVERY:
                passes.purge(db, now, timedelta(days=settings.event_retention_days), report)
                last_purge = now
            if sent:  # a single pass has sent them; the loop's lanes are sending them
                report(f"{'attempted' if once else 'sending'} {sent} deliveries")
            if once:
                return
            if not sent:
                alarm.wait(settings.worker_poll_seconds)
        report(  # told to stop (a single pass returned above)
            f"stopping: {len(sending.busy())} webhook lane(s) finish their attempt in flight "
            "and release the rest to the queue"
        )
