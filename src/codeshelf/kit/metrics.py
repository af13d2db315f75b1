"""Prometheus metrics (``prometheus-client``) on a listener of their own.

A process's counters live in its memory, unless ``PROMETHEUS_MULTIPROC_DIR`` names a directory
when ``prometheus_client`` is first imported: then each process writes its own into files there,
and the process serving the metrics adds them up (``codeshelf serve --workers N`` makes the
directory before it starts its server processes and removes it at the end). Gauges of database
state are computed at scrape time by a collector, so they are right whichever process answers.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry, start_http_server
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"


@contextlib.contextmanager
def multiprocess_directory() -> Iterator[Path]:
    """A fresh directory for the counters of this process's children (``--workers``), named
    in their environment, removed with its files at the end."""
    with tempfile.TemporaryDirectory(prefix="codeshelf-metrics-") as path:
        os.environ[MULTIPROCESS_ENV] = path
        try:
            yield Path(path)
        finally:
            os.environ.pop(MULTIPROCESS_ENV, None)


def registry(shared: Path | None, *collectors: Collector) -> CollectorRegistry:
    """What a scrape reads: the counters of the processes writing to ``shared``, else this
    process's own (with its CPU and memory); and ``collectors``."""
    found = CollectorRegistry(auto_describe=False)
    if shared is None:
        found.register(REGISTRY)
    else:
        MultiProcessCollector(found, path=str(shared))  # type: ignore[no-untyped-call]
    for collector in collectors:
        found.register(collector)
    return found


def serve(port: int, host: str, metrics: CollectorRegistry) -> Callable[[], None]:
    """Answer scrapes (``GET /metrics``, any path) on ``host:port`` in a daemon thread;
    returns what stops it."""
    server, thread = start_http_server(port, addr=host, registry=metrics)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return stop
