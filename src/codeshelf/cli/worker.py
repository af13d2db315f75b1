"""``codeshelf worker``: the background loop beside ``codeshelf serve``."""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from types import FrameType
from typing import Annotated

import typer

from codeshelf import worker as background
from codeshelf.cli import context
from codeshelf.cli.observe import (
    LogFormatOption,
    MetricsHostOption,
    MetricsPortOption,
    log_format,
    metrics_listener,
)
from codeshelf.cli.output import err, say
from codeshelf.kit import logs
from codeshelf.worker import metrics as worker_metrics


def worker(
    once: Annotated[bool, typer.Option("--once", help="Run one pass, then exit.")] = False,
    batch: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    log_format_name: LogFormatOption = "auto",
    metrics_port: MetricsPortOption = None,
    metrics_host: MetricsHostOption = "127.0.0.1",
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
    chosen = log_format(log_format_name)
    configured = logs.configure(chosen, file=settings.log_file)
    worker_metrics.count_events()
    stopping = False

    def stop(_signal: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    with metrics_listener(metrics_port, metrics_host):
        background.run(
            settings,
            db,
            vault,
            once=once,
            batch=batch,
            stopping=lambda: stopping,
            report=_reporter(json_lines=configured and chosen == "json"),
        )
    context.release(db)


def _reporter(*, json_lines: bool) -> Callable[[str], None]:
    """The loop's summaries (what a pass did): log lines too when the log is JSON (stderr stays
    one JSON object a line), else printed for a person."""
    if json_lines:
        return logging.getLogger("codeshelf.worker").info
    return lambda line: say(line, console=err)
