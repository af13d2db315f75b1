"""Turning measurements into table rows, each with its target and PASS/MISS."""

from __future__ import annotations

from bench import config
from bench.load import WrkResult
from bench.replay import ReplayResult
from bench.report import Figure
from bench.scenarios import (
    BigOrderResult,
    CpuShares,
    FloorResult,
    ImportResult,
    LoadResults,
    PgbenchResult,
    SoldResults,
)
from bench.webhooks import DelayRun, DeliveryRun, WebhookResults


def _single_writer(db: str) -> str:
    return "; SQLite: one writer at a time, orders queue on its lock" if db == "sqlite" else ""


def _errors(result: WrkResult) -> str:
    if not result.error_count:
        return "no errors"
    parts = [f"{count} {kind}" for kind, count in result.errors.items() if count]
    return "ERRORS: " + ", ".join(parts)


def load_figures(db: str, loads: LoadResults, cfg: config.BenchConfig) -> list[Figure]:
    orders, balance, cpu = loads.orders, loads.balance, loads.orders_cpu
    return [
        Figure(
            db,
            f"orders/s (1 code each, {cfg.connections} conns, {cfg.duration_s} s)",
            f"{orders.rate:,.1f}",
            note=f"{orders.requests:,} orders, {_errors(orders)}" + _single_writer(db),
        ),
        Figure(db, "orders latency p50 / p99", f"{orders.p50_ms:.1f} / {orders.p99_ms:.1f} ms"),
        Figure(
            db,
            "GET /balance req/s (reference)",
            f"{balance.rate:,.1f}",
            note=f"p50 / p99 {balance.p50_ms:.1f} / {balance.p99_ms:.1f} ms, {_errors(balance)}",
        ),
        Figure(
            db,
            "minimal async one-SELECT endpoint req/s (reference)",
            f"{loads.reference.rate:,.1f}",
            note=f"p50 / p99 {loads.reference.p50_ms:.1f} / {loads.reference.p99_ms:.1f} ms, "
            f"{_errors(loads.reference)}; bench/reference.py, same server settings",
        ),
        Figure(
            db,
            "GET /balance ÷ the minimal async endpoint",
            f"{loads.balance_ratio:.2f}",
            f"≥ {config.TARGET_BALANCE_RATIO:.2f}",
            loads.balance_ratio >= config.TARGET_BALANCE_RATIO,
        ),
        Figure(
            db,
            "orders/s ÷ balance req/s",
            f"{loads.ratio:.2f}",
            f"≥ {config.TARGET_ORDER_RATIO:.2f}",
            loads.ratio >= config.TARGET_ORDER_RATIO,
        ),
        Figure(
            db,
            "wrk CPU during orders / balance",
            f"{orders.wrk_core_share:.0%} / {balance.wrk_core_share:.0%}",
            note="of one core: the load generator is not the bottleneck"
            if max(orders.wrk_core_share, balance.wrk_core_share) < 0.5
            else "of one core",
        ),
        _cpu_figure(db, "orders", cpu),
        _cpu_figure(db, "balance", loads.balance_cpu),
        _cpu_figure(db, "the reference", loads.reference_cpu),
    ]


def after_sales_figures(db: str, sold: SoldResults) -> list[Figure]:
    rows = [
        Figure(
            db,
            f"orders/s after {sold.sold:,} codes sold",
            f"{sold.after.rate:,.1f}",
            note=f"p50 / p99 {sold.after.p50_ms:.1f} / {sold.after.p99_ms:.1f} ms, "
            f"{_errors(sold.after)}; sold in {sold.sell_s:.1f} s",
        ),
        Figure(
            db,
            "orders/s after the sales ÷ on fresh stock",
            f"{sold.ratio:.2f}",
            f"≥ {config.TARGET_AFTER_SALES_RATIO:.2f}",
            sold.ratio >= config.TARGET_AFTER_SALES_RATIO,
            note="the pick costs the same however many codes were sold",
        ),
        _cpu_figure(db, "orders after the sales", sold.after_cpu),
        Figure(
            db,
            "GET /inventory, median of 20 (it counts the stock)",
            f"{sold.inventory_ms:.1f} ms",
            note="with the codes still in stock after the sales",
        ),
    ]
    if sold.fresh_pages is not None and sold.after_pages is not None:
        rows.append(
            Figure(
                db,
                "pages one 1-code pick reads: fresh / after the sales",
                f"{sold.fresh_pages} / {sold.after_pages}",
                note="EXPLAIN (ANALYZE, BUFFERS) of the orders' own pick statement",
            )
        )
    return rows


def replay_figures(db: str, replayed: ReplayResult, orders_per_s: float) -> list[Figure]:
    ratio = orders_per_s / replayed.tps
    return [
        Figure(
            db,
            "one order's own SQL replayed by pgbench, tps (reference)",
            f"{replayed.tps:,.1f}",
            note=f"{replayed.statements} statements, {replayed.round_trips} round trips, "
            f"{replayed.transactions} transactions; {replayed.clients} clients (bench/replay.py)",
        ),
        Figure(
            db,
            "orders/s after the sales ÷ their SQL replayed",
            f"{ratio:.2f}",
            f"≥ {config.TARGET_ORDERS_PER_REPLAY:.2f}",
            ratio >= config.TARGET_ORDERS_PER_REPLAY,
        ),
    ]


def orders_per_tpcb(db: str, orders_per_s: float, tps: float) -> Figure:
    ratio = orders_per_s / tps
    return Figure(
        db,
        "orders/s after the sales ÷ pgbench TPC-B tps",
        f"{ratio:.3f}",
        f"≥ {config.TARGET_ORDERS_PER_TPCB:.2f}",
        ratio >= config.TARGET_ORDERS_PER_TPCB,
        note="what the database itself sustains on this machine",
    )


def _cpu_figure(db: str, run: str, cpu: CpuShares) -> Figure:
    busy = "" if cpu.others < 0.25 else "other processes competed for the CPU: pessimistic"
    return Figure(
        db,
        f"CPU during {run}: server / db / others",
        f"{cpu.server:.0%} / {cpu.database:.0%} / {cpu.others:.0%}",
        note=busy or "of one core each",
    )


def pgbench_figures(db: str, result: PgbenchResult) -> list[Figure]:
    return [
        Figure(
            db,
            f"pgbench TPC-B tps ({result.clients} clients, reference)",
            f"{result.tps:,.1f}",
            note=f"scale {result.scale}",
        ),
    ]


def big_order_figures(db: str, result: BigOrderResult) -> list[Figure]:
    check = (
        f"{result.codes_returned:,} codes, all distinct"
        if result.verified
        else f"WRONG: {result.codes_returned:,} codes, {result.distinct:,} distinct"
    )
    passed = result.verified and result.total_s <= config.TARGET_BIG_ORDER_S
    return [
        Figure(db, f"{result.quantity:,}-code order: POST /orders", f"{result.post_s:.3f} s"),
        Figure(
            db, f"{result.quantity:,}-code order: GET codes", f"{result.get_s:.3f} s", note=check
        ),
        Figure(
            db,
            f"{result.quantity:,}-code order: total",
            f"{result.total_s:.3f} s",
            f"≤ {config.TARGET_BIG_ORDER_S:.2f} s",
            passed,
        ),
    ]


FLOOR_WORK = {
    "postgres": "binary COPY",
    "sqlite": "executemany (SQLite has no COPY; one writer at a time, so a second import waits)",
}


def _db_cpu(seconds: float) -> str:
    return f" + {seconds:.1f} s PostgreSQL CPU" if seconds else ""


def import_figures(db: str, result: ImportResult, floor: FloorResult) -> list[Figure]:
    complete = result.imported == result.codes == floor.codes
    ratio = result.rate / floor.rate
    return [
        Figure(
            db,
            f"stock import {result.codes:,} codes (CLI)",
            f"{result.rate:,.0f}/s",
            note=f"{result.imported:,} imported in {result.wall_s:.1f} s wall, "
            f"{result.cpu_s:.1f} s CPU{_db_cpu(result.db_cpu_s)}",
        ),
        Figure(
            db,
            "import raw floor, sequential (reference)",
            f"{floor.rate:,.0f}/s",
            note=f"read + HMAC + AES-GCM + {FLOOR_WORK.get(db, 'insert')} into a codes-shaped "
            f"table, 1 process: {floor.wall_s:.1f} s wall, {floor.cpu_s:.1f} s CPU"
            f"{_db_cpu(floor.db_cpu_s)}, {floor.max_rss_mb:,.0f} MB",
        ),
        Figure(
            db,
            "import ÷ floor",
            f"{ratio:.2f}",
            f"≥ {config.TARGET_IMPORT_FLOOR_RATIO:.1f}",
            complete and ratio >= config.TARGET_IMPORT_FLOOR_RATIO,
            note="" if complete else "WRONG: not every code was stored",
        ),
        Figure(
            db,
            "stock import peak RSS",
            f"{result.max_rss_mb:,.0f} MB",
            f"≤ {config.TARGET_IMPORT_RSS_MB} MB",
            result.max_rss_mb <= config.TARGET_IMPORT_RSS_MB,
        ),
    ]


SQLITE_WRITER = "SQLite: one writer at a time (the worker's claims and records wait their turn"
SQLITE_WRITER += " behind the server's orders)"


def webhook_figures(db: str, result: WebhookResults) -> list[Figure]:
    run, ref = result.delivery, result.reference
    cpu, ref_cpu = run.cpu, ref.cpu
    sqlite = db == "sqlite"
    return [
        Figure(
            db,
            f"webhooks delivered/s (1 worker, {run.queued:,} events)",
            f"{run.rate:,.1f}",
            f"≥ {config.TARGET_WEBHOOK_RATE:,}/s",
            run.complete and run.rate >= config.TARGET_WEBHOOK_RATE,
            note=_delivery_check(run) + (f"; {SQLITE_WRITER}" if sqlite else ""),
        ),
        Figure(
            db,
            "receiver req/s, 1 httpx client (reference)",
            f"{ref.rate:,.1f}",
            note=f"{ref.posts:,} sequential POSTs of signed {ref.body_bytes} B bodies",
        ),
        Figure(
            db,
            "webhooks/s ÷ reference req/s",
            f"{result.ratio:.2f}",
            note="one endpoint: its queue is sent in order, one POST at a time",
        ),
        Figure(
            db,
            "CPU delivering: worker / receiver / db / others",
            f"{cpu['worker']:.0%} / {cpu['receiver']:.0%} / {cpu['database']:.0%}"
            f" / {cpu['others']:.0%}",
            note="of one core each: the receiver is not the bottleneck"
            if cpu["receiver"] < 0.25
            else "of one core each",
        ),
        Figure(
            db,
            "CPU in reference: client / receiver / others",
            f"{ref_cpu['client']:.0%} / {ref_cpu['receiver']:.0%} / {ref_cpu['others']:.0%}",
            note="of one core each",
        ),
        _delay_figure(db, result.delay),
    ]


def _delay_figure(db: str, delay: DelayRun) -> Figure:
    matched = delay.matched == delay.orders - delay.refused
    fallback = f"polling every {config.WORKER_POLL_S:g} s, the default, as a fallback"
    woken = (
        f"no NOTIFY: worker woken by a changed PRAGMA data_version ({fallback}); {SQLITE_WRITER}"
        if db == "sqlite"
        else f"worker woken by NOTIFY on commit ({fallback})"
    )
    return Figure(
        db,
        "order → webhook delay p50 / p99",
        f"{delay.median_ms:,.1f} / {delay.p99_ms:,.1f} ms",
        "—" if db == "sqlite" else f"p99 < {config.TARGET_WEBHOOK_P99_MS} ms",
        None if db == "sqlite" else matched and delay.p99_ms < config.TARGET_WEBHOOK_P99_MS,
        note=f"{delay.matched} of {delay.orders} orders' order.fulfilled matched"
        f"{'' if matched else ' (MISSING WEBHOOKS)'}, orders at {delay.rate:g}/s, {woken}",
    )


def _delivery_check(run: DeliveryRun) -> str:
    if not run.complete:
        return (
            f"WRONG: {run.queued:,} queued, {run.posts:,} POSTs received, {run.distinct:,} "
            f"distinct, states {run.states}"
        )
    signed = "signature verified" if run.signature_ok else "BAD SIGNATURE"
    return (
        f"all succeeded, {signed}; {run.start_to_done_s:.1f} s from worker start to done "
        f"(rate: first to last arrival)"
    )
