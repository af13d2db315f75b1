"""Turning measurements into table rows, each with its target and PASS/MISS."""

from __future__ import annotations

from bench import config
from bench.load import WrkResult
from bench.report import Figure
from bench.scenarios import BigOrderResult, CpuShares, ImportResult, LoadResults, PgbenchResult
from bench.webhooks import DelayRun, DeliveryRun, WebhookResults


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
            note=f"{orders.requests:,} orders, {_errors(orders)}",
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
    ]


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
    passed = result.verified and result.total_s < config.TARGET_BIG_ORDER_S
    return [
        Figure(db, f"{result.quantity:,}-code order: POST /orders", f"{result.post_s:.3f} s"),
        Figure(
            db, f"{result.quantity:,}-code order: GET codes", f"{result.get_s:.3f} s", note=check
        ),
        Figure(
            db,
            f"{result.quantity:,}-code order: total",
            f"{result.total_s:.3f} s",
            f"< {config.TARGET_BIG_ORDER_S:.2f} s",
            passed,
        ),
    ]


def import_figures(db: str, result: ImportResult) -> list[Figure]:
    complete = result.imported == result.codes
    return [
        Figure(
            db,
            f"stock import {result.codes:,} codes (CLI)",
            f"{result.rate:,.0f}/s",
            f"≥ {config.TARGET_IMPORT_RATE:,}/s",
            complete and result.rate >= config.TARGET_IMPORT_RATE,
            note=f"{result.imported:,} imported in {result.wall_s:.1f} s wall, "
            f"{result.cpu_s:.1f} s CPU",
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
