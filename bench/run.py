"""``make bench``: the performance figures of codeshelf, on PostgreSQL and then on SQLite.

What is measured, per database, against the real ``codeshelf`` command as separate processes:

1. Stock import: ``codeshelf stock import`` of 1,000,000 random 12-character codes (one per
   line, generated beforehand) — codes per second over the subprocess's wall time, and its peak
   RSS (``wait4`` on that child). These codes are then the stock for the orders below. Before
   it, its reference: the raw floor (``bench/floor.py``), the same file read, fingerprinted and
   sealed with codeshelf's ``Vault`` and stored into a scratch table shaped like ``codes`` (same
   indexes and constraints) by one sequential process — binary COPY on PostgreSQL,
   ``executemany`` on SQLite — timed the same way; the ratio import ÷ floor has a target of 0.8.
2. Order throughput: ``codeshelf serve`` under wrk (16 connections, 2 threads), placing 1-code
   orders (POST /api/v1/orders with a fresh Idempotency-Key per request, set by a Lua script).
   Beside it, under the same load generator, GET /api/v1/balance (one authenticated query) as a
   reference; the ratio orders/s ÷ balance req/s has a target of 0.4. Each run follows a short
   warm-up; latencies p50/p99 come from wrk's histogram. wrk's own CPU time (``wait4``) shows
   the load generator is not the bottleneck; the server's, the database backends' (PostgreSQL)
   and the whole machine's CPU over the same window show where the time goes.
3. One 10,000-code order end to end: POST /orders, then GET /orders/{id}/codes, each timed;
   the codes are checked to be 10,000 distinct ones.
4. Webhooks (``bench/webhooks.py``): only now does the bench partner get a webhook endpoint (so
   the orders above queue no deliveries, bar any the server was still committing), pointing at a
   receiver on loopback (``bench/receiver.py``, a process of its own answering 204; its CPU is
   reported). 3,000 events are queued through 1-code orders (3 events each), then one
   ``codeshelf worker`` starts: events delivered per second, from the first arrival to the last,
   every delivery then checked as succeeded in the database and a signature verified (target:
   1,000/s). With the worker still running at its default 1-second poll interval, 100 orders at
   10 per second, one at a time: the delay from each POST /orders answer to the arrival of its
   ``order.fulfilled``, median and p99 (target on PostgreSQL, where the order's commit wakes the
   worker by NOTIFY: p99 under 100 ms; SQLite's worker watches its data_version). The
   reference, the worker stopped: the same receiver, sent as many POSTs of a same-size signed
   body one after another by one httpx client; the ratio worker ÷ reference is printed.
5. PostgreSQL only: pgbench TPC-B (``pgbench -c 16 -j 2``) on the same cluster, a reference for
   what the database itself sustains on this machine.

PostgreSQL is a fresh throwaway cluster with fsync on; SQLite is a file in a temporary directory.
The demo data (product, partner, deposit) is made through the CLI. Speed is reported, never
asserted: the exit status is 0 unless the benchmark itself failed. Results are printed as a
table and written to bench/results/latest.json. ``--quick`` uses smaller sizes (100,000 codes,
3-second runs, 300 webhook events, 30 timed orders); ``--only postgres|sqlite`` runs one database;
``--part import`` measures only the import and its floor; ``--part webhooks`` only the
webhooks, after importing 100,000 codes for their orders.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import traceback
from contextlib import AbstractContextManager, ExitStack
from dataclasses import asdict, replace
from pathlib import Path
from types import FrameType
from typing import Any

from tests.fixtures.postgres import find_bindir

from bench import config, figures, replay, scenarios, stack, webhooks
from bench.load import Load, ensure_wrk
from bench.report import Figure, machine, print_machine, print_table, write_json

DATABASES = ("postgres", "sqlite")
PARTS = ("all", "import", "webhooks")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, 3-second runs")
    parser.add_argument("--only", choices=DATABASES, help="benchmark one database")
    parser.add_argument(
        "--part",
        choices=PARTS,
        default="all",
        help="import: only the stock import and its raw floor; webhooks: only the webhooks",
    )
    return parser.parse_args(argv)


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds the with-blocks: servers and clusters stop


def _log(message: str) -> None:
    print(f"· {message}", flush=True)


class Bench:
    """One run: its configuration, load generator, scratch directory and collected results."""

    def __init__(self, cfg: config.BenchConfig, wrk: str, tmp: Path, part: str = "all") -> None:
        self.cfg = cfg
        self.part = part
        self.tmp = tmp
        self.wrk = wrk
        self.bindir = find_bindir()
        self.codes_file = tmp / "codes.txt"
        self.figures: list[Figure] = []
        self.results: dict[str, Any] = {}
        self.crashed = False

    def run(self, databases: tuple[str, ...]) -> None:
        _log(f"writing {self.cfg.import_codes:,} random codes to import")
        scenarios.write_codes(self.codes_file, self.cfg.import_codes)
        for name in databases:
            try:
                self.database(name)
            except Exception as exc:  # report it, and still benchmark the other database
                traceback.print_exc()
                self.crashed = True
                self.figures.append(
                    Figure(
                        name,
                        "benchmark crashed",
                        type(exc).__name__,
                        note=str(exc).splitlines()[0][:120] if str(exc) else "",
                    )
                )
                self.results.setdefault(name, {})["error"] = traceback.format_exc()

    def database(self, name: str) -> None:
        workdir = self.tmp / name
        workdir.mkdir()
        if name == "postgres" and self.bindir is None:
            self.figures.append(Figure(name, "skipped", "—", note="no PostgreSQL binaries found"))
            return
        with ExitStack() as stack_:
            target = stack_.enter_context(self._target(name, workdir))
            self._measure(stack_, target)

    def _target(self, name: str, workdir: Path) -> AbstractContextManager[stack.Target]:
        if name == "postgres":
            assert self.bindir is not None
            _log(f"starting PostgreSQL from {self.bindir} (fsync on)")
            return stack.postgres(self.bindir, workdir)
        return stack.sqlite(workdir)

    def _measure(self, stack_: ExitStack, target: stack.Target) -> None:
        """Import first (the codes are the stock the orders draw on), then load the server."""
        name, cfg = target.name, self.cfg
        _log(f"{name}: migrating and adding product, partner and deposit through the CLI")
        shop = stack.prepare(target)
        _log(f"{name}: the import's raw floor: {cfg.import_codes:,} codes, one process")
        floor = scenarios.import_floor(target, self.codes_file)
        self.results.setdefault(name, {})["import_floor"] = floor.as_json()
        _log(f"{name}: importing {cfg.import_codes:,} codes through the CLI")
        imported = scenarios.stock_import(target, self.codes_file, cfg.import_codes)
        rows = figures.import_figures(name, imported, floor)
        self._record(name, "import", imported.as_json(), rows)
        if self.part == "import":
            return
        server = stack_.enter_context(stack.serve(target, shop))
        if self.part == "all":
            with webhooks.worker(target):  # beside the server, as in production
                sold = self._load(target, server, shop)
        hooks = webhooks.measure(target, server, shop, cfg, _log)
        self._record(name, "webhooks", hooks.as_json(), figures.webhook_figures(name, hooks))
        if self.part == "all" and target.cluster is not None and self.bindir is not None:
            _log(f"{name}: pgbench TPC-B on the same cluster")
            bench = scenarios.pgbench(self.bindir, target, cfg)
            self._record(name, "pgbench", bench.as_json(), figures.pgbench_figures(name, bench))
            self.figures.append(figures.orders_per_tpcb(name, sold.after.rate, bench.tps))

    def _load(
        self, target: stack.Target, server: stack.Server, shop: stack.Shop
    ) -> scenarios.SoldResults:
        """GET /balance, orders on fresh stock, the big order, then orders after many sold."""
        name, cfg = target.name, self.cfg
        _log(f"{name}: serving on {server.url}; GET /balance, then orders, under wrk")
        load = Load(self.wrk, target.workdir, cfg.connections, cfg.wrk_threads)
        fresh_pages = scenarios.pick_pages(target)
        loads = scenarios.throughput(load, target, server, shop, cfg)
        self._record(name, "load", loads.as_json(), figures.load_figures(name, loads, cfg))
        _log(f"{name}: one {config.BIG_ORDER:,}-code order")
        big = scenarios.big_order(server, shop)
        self._record(name, "big_order", big.as_json(), figures.big_order_figures(name, big))
        _log(f"{name}: selling {cfg.sold_before:,} codes, then orders under wrk again")
        sold = scenarios.after_sales(load, target, server, shop, cfg, loads.orders, fresh_pages)
        self._record(name, "after_sales", sold.as_json(), figures.after_sales_figures(name, sold))
        if target.cluster is not None and self.bindir is not None:
            _log(f"{name}: one order's own SQL, captured and replayed by pgbench")
            replayed = replay.replay(self.bindir, target, shop, cfg)
            rows = figures.replay_figures(name, replayed, sold.after.rate)
            self._record(name, "order_replay", replayed.as_json(), rows)
        return sold

    def _record(self, name: str, what: str, data: dict[str, Any], rows: list[Figure]) -> None:
        self.results.setdefault(name, {})[what] = data
        self.figures += rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started ignoring it
    cfg = config.BenchConfig.quick() if args.quick else config.BenchConfig.full()
    if args.part == "webhooks":
        cfg = replace(cfg, import_codes=min(cfg.import_codes, config.WEBHOOK_PART_CODES))
    wrk = ensure_wrk()
    info = machine(find_bindir())
    print_machine(info)
    try:
        with tempfile.TemporaryDirectory(prefix="codeshelf-bench-") as tmp:
            bench = Bench(cfg, wrk, Path(tmp), args.part)
            bench.run((args.only,) if args.only else DATABASES)
    except KeyboardInterrupt:
        print("\ninterrupted: servers and clusters stopped, nothing written", file=sys.stderr)
        return 130
    print_table(bench.figures)
    document = {"machine": info, "config": asdict(cfg) | {"quick": args.quick, "part": args.part}}
    path = write_json(document | {"results": bench.results}, bench.figures)
    print(f"results written to {path}")
    return 1 if bench.crashed else 0


if __name__ == "__main__":
    sys.exit(main())
