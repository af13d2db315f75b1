"""The sizes and durations of one benchmark run (full, or ``--quick`` for fast iteration)."""

from __future__ import annotations

from dataclasses import dataclass

from codeshelf.kit.settings import Settings

SKU = "psn-us-50"
PRICE = "46.50"
# Enough for every order of a run (~1.8M USD at 2,000 orders/s). Not 100,000,000.00: money
# columns are 32-bit INTEGER on PostgreSQL, so a wallet cannot hold more than 21,474,836.47.
DEPOSIT = "100000000.00"
RATE_LIMIT = 100_000_000
BIG_ORDER = 10_000

# Targets: each figure is reported against these; speed is reported, never asserted.
TARGET_ORDER_RATIO = 0.4  # orders/s ÷ GET /balance req/s, at least
TARGET_BALANCE_RATIO = 0.5  # GET /balance ÷ the minimal async one-SELECT endpoint, at least
TARGET_ORDERS_PER_REPLAY = 0.6  # 1-code orders/s ÷ the same orders' SQL replayed by pgbench
TARGET_ORDERS_PER_TPCB = 0.2  # 1-code orders/s after the sales ÷ pgbench TPC-B tps, at least
TARGET_BIG_ORDER_S = 0.5  # one 10,000-code order, POST + GET codes, at most (issue 11)
TARGET_IMPORT_FLOOR_RATIO = 0.8  # import codes/s ÷ the sequential raw floor's, at least
TARGET_IMPORT_RSS_MB = 200  # peak resident set of the import process, at most
TARGET_AFTER_SALES_RATIO = 0.9  # orders/s after sold_before codes ÷ on fresh stock: ~1, no lower
TARGET_WEBHOOK_RATE = 1_000  # deliveries per second, one worker, one local receiver, at least
TARGET_WEBHOOK_P99_MS = 100  # order → delivered webhook on PostgreSQL (woken by NOTIFY), under


# Webhooks: the order rate while the delay from order to webhook is measured, and the worker's
# poll interval when it found nothing to send: codeshelf's default, which the worker runs with
# (on PostgreSQL a commit wakes it sooner: the delay must come from that, not from the poll).
WEBHOOK_LATENCY_RATE = 10.0  # orders per second
WORKER_POLL_S: float = Settings.model_fields["worker_poll_seconds"].default
# ``--part webhooks`` imports only this many codes: stock enough for the orders that queue events.
WEBHOOK_PART_CODES = 100_000


@dataclass(frozen=True)
class BenchConfig:
    import_codes: int
    duration_s: int
    warmup_s: int
    connections: int
    wrk_threads: int
    pgbench_scale: int
    webhook_events: int  # queued (3 per 1-code order), then delivered by one worker
    latency_orders: int  # placed at WEBHOOK_LATENCY_RATE, each timed to its order.fulfilled
    sold_before: int  # codes sold (10,000 an order) before 1-code orders are measured again

    @classmethod
    def full(cls) -> BenchConfig:
        return cls(
            1_000_000,
            10,
            2,
            16,
            2,
            16,
            webhook_events=3_000,
            latency_orders=100,
            sold_before=200_000,
        )

    @classmethod
    def quick(cls) -> BenchConfig:
        return cls(
            100_000, 3, 1, 16, 2, 4, webhook_events=300, latency_orders=30, sold_before=50_000
        )
