"""The options ``serve`` and ``worker`` share for being watched: the log format, and the
metrics listener."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Annotated

import typer
from prometheus_client.registry import Collector

from codeshelf.kit import logs, metrics

LogFormatOption = Annotated[
    str,
    typer.Option(
        "--log-format",
        envvar="CODESHELF_LOG_FORMAT",
        help="json: one JSON object a line (for a log collector); text: for a person; auto: "
        "text on a terminal, else json.",
    ),
]
MetricsPortOption = Annotated[
    int | None,
    typer.Option(
        "--metrics-port",
        min=1,
        max=65535,
        help="Serve Prometheus metrics on this port (a listener of its own). [default: off]",
        show_default=False,
    ),
]
MetricsHostOption = Annotated[
    str, typer.Option("--metrics-host", help="The metrics listener's address.")
]


def log_format(chosen: str) -> str:
    """``auto`` resolved: text when stderr is a terminal (``make run``), else json."""
    if chosen == "auto":
        return "text" if sys.stderr.isatty() else "json"
    if chosen not in logs.FORMATS:
        choices = f"auto, {' or '.join(logs.FORMATS)}"
        raise typer.BadParameter(f"choose {choices}", param_hint="--log-format")
    return chosen


@contextlib.contextmanager
def metrics_listener(
    port: int | None, host: str, *collectors: Collector, processes: int = 1
) -> Iterator[None]:
    """While the block runs, metrics on ``host:port`` (nothing when ``port`` is None): this
    process's own, or, with several ``processes`` started inside the block, theirs added up
    (through a shared directory made here and removed at the end)."""
    if port is None:
        yield
        return
    with contextlib.ExitStack() as stack:
        shared = stack.enter_context(metrics.multiprocess_directory()) if processes > 1 else None
        stack.callback(metrics.serve(port, host, metrics.registry(shared, *collectors)))
        yield
