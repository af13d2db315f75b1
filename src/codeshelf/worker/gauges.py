"""Gauges of the platform's state, read from the database when Prometheus scrapes: codes
available per SKU, orders per state (backorders waiting among them), claims per status and
overdue, and the webhook outbox's depth and oldest undelivered age.

Read-only, a handful of short aggregate queries, each the domain's own (its service); computed
per scrape, so every process serving metrics reports the same figures. A database that does not
answer gives ``codeshelf_state_up 0`` and no other state gauge (the scrape itself succeeds).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from codeshelf.claims import service as claims
from codeshelf.kit.clock import utcnow
from codeshelf.kit.db import Database
from codeshelf.orders import service as orders
from codeshelf.stock import service as stock
from codeshelf.webhooks import service as webhooks

log = logging.getLogger("codeshelf.metrics")
UP = "Whether the state gauges could be read from the database."


def _gauge(name: str, doc: str, label: str | None, values: dict[str, float]) -> GaugeMetricFamily:
    if label is None:
        return GaugeMetricFamily(name, doc, value=values[""])
    family = GaugeMetricFamily(name, doc, labels=[label])
    for key, value in sorted(values.items()):
        family.add_metric([key], value)
    return family


class StateCollector(Collector):
    """The state gauges, from ``db`` at each scrape."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = utcnow()
        try:
            with self.db.read_session() as session:
                available = stock.available_by_sku(session)
                by_state = orders.counts_by_state(session)
                by_status = claims.status_counts(session)
                overdue = claims.overdue_count(session, now)
                backlog = webhooks.backlog(session, now)
        except Exception as exc:  # a scrape must answer: "up 0" says the database did not
            log.warning("metrics: reading the state gauges failed (%s)", type(exc).__name__)
            yield _gauge("codeshelf_state_up", UP, None, {"": 0})
            return
        yield _gauge("codeshelf_state_up", UP, None, {"": 1})
        yield _gauge(
            "codeshelf_codes_available", "Codes for sale now, per SKU.", "sku",
            {sku: float(count) for sku, count in available.items()},
        )  # fmt: skip
        yield _gauge(
            "codeshelf_orders", "Orders per state (pending ones as review or backorder).",
            "state", {state: float(count) for state, count in by_state.items()},
        )  # fmt: skip
        yield _gauge(
            "codeshelf_backorders_waiting", "Backorders waiting for stock.", None,
            {"": float(by_state.get("backorder", 0))},
        )  # fmt: skip
        yield _gauge(
            "codeshelf_claims", "Claims per status.", "status",
            {status: float(count) for status, count in by_status.items()},
        )  # fmt: skip
        yield _gauge(
            "codeshelf_claims_overdue", "Open claims past their deadline.", None,
            {"": float(overdue)},
        )  # fmt: skip
        yield _gauge(
            "codeshelf_webhook_queue_depth", "Webhook deliveries not yet made (due or retrying).",
            None, {"": float(backlog.pending)},
        )  # fmt: skip
        yield _gauge(
            "codeshelf_webhook_oldest_undelivered_seconds",
            "Age of the oldest webhook delivery not yet made (0: none).", None,
            {"": backlog.oldest_age_seconds},
        )  # fmt: skip
