"""``codeshelf worker``: the background loop beside ``codeshelf serve``."""

from __future__ import annotations

import logging
import signal
from types import FrameType
from typing import Annotated

import typer

from codeshelf import worker as background
from codeshelf.cli import context
from codeshelf.cli.output import err, say


def worker(
    once: Annotated[bool, typer.Option("--once", help="Run one pass, then exit.")] = False,
    batch: Annotated[int, typer.Option(min=1, max=1000)] = 50,
) -> None:
    """Deliver webhooks from the outbox (with retries), serve what waits for stock, purge.

    Each pass serves approved claims waiting for replacement codes, then backorders (first come,
    first served; those past their deadline fail), from whatever stock has arrived; then sends
    the webhooks that are due. Several workers may run against one PostgreSQL. Stop with Ctrl-C
    or SIGTERM: the deliveries in flight finish and are recorded (each within its 15 s
    deadline), the rest go back to the queue, a running import is rolled back and queued again;
    then it exits 0 (waiting at most CODESHELF_SHUTDOWN_GRACE_SECONDS). A delivery cut off
    mid-send by a kill is sent again later.
    """
    settings = context.settings()
    db = context.database()
    vault = context.vault()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    stopping = False

    def stop(_signal: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    background.run(
        settings,
        db,
        vault,
        once=once,
        batch=batch,
        stopping=lambda: stopping,
        report=lambda line: say(line, console=err),
    )
    context.release(db)
