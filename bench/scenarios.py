"""The measurements themselves: stock import, order throughput, one big order, pgbench."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench import config, stack
from bench.load import Load, WrkResult
from bench.procs import (
    ChildRun,
    children_of,
    codeshelf_executable,
    machine_busy_s,
    process_cpu_s,
    run_child,
)
from bench.stack import DATABASE, Server, Shop, Target

ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
# Random bytes below 252 (7 * 36) map evenly onto the alphabet; the rest are dropped.
_TO_ALPHABET = bytes(ALPHABET[b % 36] if b < 252 else 0 for b in range(256))
_DROPPED = bytes(range(252, 256))


def write_codes(path: Path, count: int) -> Path:
    """``count`` random 12-character A-Z0-9 codes, one per line."""
    needed = count * 12
    pool = b""
    while len(pool) < needed:
        pool += os.urandom(needed - len(pool) + 1024).translate(_TO_ALPHABET, _DROPPED)
    view = memoryview(pool)
    with path.open("wb") as out:
        for start in range(0, needed, 12 * 65_536):
            chunk = view[start : min(start + 12 * 65_536, needed)]
            out.write(
                b"".join(chunk[i : i + 12].tobytes() + b"\n" for i in range(0, len(chunk), 12))
            )
    return path


@dataclass(frozen=True)
class ImportResult:
    codes: int
    imported: int
    wall_s: float
    max_rss_mb: float
    cpu_s: float
    output: str
    db_cpu_s: float = 0.0  # PostgreSQL's processes meanwhile (SQLite works inside the import)

    @property
    def rate(self) -> float:
        return self.codes / self.wall_s

    def as_json(self) -> dict[str, Any]:
        return {
            "codes": self.codes,
            "imported": self.imported,
            "wall_s": self.wall_s,
            "codes_per_s": self.rate,
            "max_rss_mb": self.max_rss_mb,
            "cpu_s": self.cpu_s,
            "db_cpu_s": self.db_cpu_s,
            "output": self.output,
        }


def stock_import(target: Target, codes_file: Path, count: int) -> ImportResult:
    """``codeshelf stock import`` as a subprocess: wall time, and its peak RSS from wait4."""
    output = target.workdir / "import.out"
    batch = f"bench-{uuid.uuid4().hex[:8]}"
    argv = [codeshelf_executable(), "stock", "import", str(codes_file), "--sku", config.SKU]
    db_cpu = target.database_cpu_s()
    child = run_child(
        [*argv, "--batch", batch, "--json"], env=target.env(), cwd=target.workdir, stdout=output
    )
    db_cpu = target.database_cpu_s() - db_cpu
    text = output.read_text()
    if child.returncode != 0:
        stderr = output.with_suffix(".err").read_text(errors="replace")
        raise RuntimeError(f"codeshelf stock import exited {child.returncode}:\n{stderr[-2000:]}")
    imported = int(json.loads(text)["imported"])
    return ImportResult(
        count, imported, child.wall_s, child.max_rss_mb, child.cpu_s, text[:2000], db_cpu
    )


@dataclass(frozen=True)
class FloorResult:
    """The import's raw floor (``bench/floor.py``): the same file, one process, sequential."""

    codes: int
    wall_s: float
    max_rss_mb: float
    cpu_s: float
    db_cpu_s: float

    @property
    def rate(self) -> float:
        return self.codes / self.wall_s

    def as_json(self) -> dict[str, Any]:
        return {
            "codes": self.codes,
            "wall_s": self.wall_s,
            "codes_per_s": self.rate,
            "max_rss_mb": self.max_rss_mb,
            "cpu_s": self.cpu_s,
            "db_cpu_s": self.db_cpu_s,
        }


def import_floor(target: Target, codes_file: Path) -> FloorResult:
    """``bench/floor.py`` as a child process, timed as the import is; its table dropped after."""
    _floor_step(target, "setup")
    db_cpu = target.database_cpu_s()
    child, output = _floor_step(target, "run", str(codes_file))
    db_cpu = target.database_cpu_s() - db_cpu
    _floor_step(target, "drop")
    codes = int(json.loads(output)["codes"])
    return FloorResult(codes, child.wall_s, child.max_rss_mb, child.cpu_s, db_cpu)


def _floor_step(target: Target, step: str, *args: str) -> tuple[ChildRun, str]:
    output = target.workdir / f"floor-{step}.out"
    env = {**target.env(), "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    argv = [sys.executable, "-m", "bench.floor", step, target.url, *args]
    child = run_child(argv, env=env, cwd=target.workdir, stdout=output)
    if child.returncode != 0:
        stderr = output.with_suffix(".err").read_text(errors="replace")
        raise RuntimeError(f"bench.floor {step} exited {child.returncode}:\n{stderr[-2000:]}")
    return child, output.read_text()


@dataclass(frozen=True)
class CpuShares:
    """CPU used during a load run, in cores (1.0 = one core kept busy all along).

    ``others`` is what the rest of the machine used meanwhile: anything well above zero means
    something else competed for the CPU and the figures of this run are pessimistic.
    """

    server: float
    database: float
    wrk: float
    machine: float

    @property
    def others(self) -> float:
        return max(0.0, self.machine - self.server - self.database - self.wrk)

    def as_json(self) -> dict[str, float]:
        return {
            "server": self.server,
            "database": self.database,
            "wrk": self.wrk,
            "others": self.others,
            "machine": self.machine,
        }


def measured(
    target: Target, server: Server, run: Callable[[], WrkResult]
) -> tuple[WrkResult, CpuShares]:
    """Run a load and account the CPU of the server, the database backends and the machine."""
    serving = [server.pid, *children_of(server.pid)]  # uvicorn's supervisor and its workers
    before = {pid: process_cpu_s(pid) for pid in [*serving, *target.backend_pids()]}
    busy = machine_busy_s()
    started = time.perf_counter()
    result = run()
    wall = time.perf_counter() - started
    busy = machine_busy_s() - busy
    after = {pid: process_cpu_s(pid) for pid in [*serving, *target.backend_pids()]}
    used = {pid: after[pid] - before.get(pid, 0.0) for pid in after}
    server_s = sum(used.pop(pid) for pid in serving)
    shares = CpuShares(
        server_s / wall, sum(used.values()) / wall, result.wrk_cpu_s / wall, busy / wall
    )
    return result, shares


@dataclass(frozen=True)
class LoadResults:
    balance: WrkResult
    balance_cpu: CpuShares
    orders: WrkResult
    orders_cpu: CpuShares
    reference: WrkResult
    reference_cpu: CpuShares

    @property
    def ratio(self) -> float:
        return self.orders.rate / self.balance.rate

    @property
    def balance_ratio(self) -> float:
        return self.balance.rate / self.reference.rate

    def as_json(self) -> dict[str, Any]:
        return {
            "reference": {**self.reference.as_json(), "cpu_cores": self.reference_cpu.as_json()},
            "balance_per_reference": self.balance_ratio,
            "balance": {**self.balance.as_json(), "cpu_cores": self.balance_cpu.as_json()},
            "orders": {**self.orders.as_json(), "cpu_cores": self.orders_cpu.as_json()},
            "orders_per_balance": self.ratio,
        }


def throughput(
    load: Load, target: Target, server: Server, shop: Shop, cfg: config.BenchConfig
) -> LoadResults:
    """The minimal async endpoint (a reference), GET /balance, then 1-code orders; each after
    a short warm-up. The reference runs on its own, with codeshelf's server idle."""
    url, key, seconds = server.url, shop.api_key, cfg.duration_s
    with stack.reference(target, shop) as ref:
        path = f"{ref.url}/balance/{shop.partner_id}"
        load.get(path, cfg.warmup_s, "reference")
        reference, reference_cpu = measured(
            target, ref, lambda: load.get(path, seconds, "reference")
        )
    load.balance(url, key, cfg.warmup_s)
    balance, balance_cpu = measured(target, server, lambda: load.balance(url, key, seconds))
    load.orders(url, key, config.SKU, cfg.warmup_s)
    orders, orders_cpu = measured(
        target, server, lambda: load.orders(url, key, config.SKU, seconds)
    )
    return LoadResults(balance, balance_cpu, orders, orders_cpu, reference, reference_cpu)


@dataclass(frozen=True)
class BigOrderResult:
    quantity: int
    post_s: float
    get_s: float
    codes_returned: int
    distinct: int

    @property
    def total_s(self) -> float:
        return self.post_s + self.get_s

    @property
    def verified(self) -> bool:
        return self.codes_returned == self.distinct == self.quantity

    def as_json(self) -> dict[str, Any]:
        return {
            "quantity": self.quantity,
            "post_s": self.post_s,
            "get_codes_s": self.get_s,
            "total_s": self.total_s,
            "codes_returned": self.codes_returned,
            "distinct_codes": self.distinct,
            "verified": self.verified,
        }


def big_order(server: Server, shop: Shop, quantity: int = config.BIG_ORDER) -> BigOrderResult:
    """POST one order of ``quantity`` codes, then GET its codes; each call timed on its own."""
    headers = {"Authorization": f"Bearer {shop.api_key}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=300) as client:
        started = time.perf_counter()
        placed = client.post(
            "/api/v1/orders",
            json={"product_id": config.SKU, "quantity": quantity},
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        post_s = time.perf_counter() - started
        if placed.status_code != 201 or placed.json()["status"] != "delivered":
            raise RuntimeError(f"the big order got {placed.status_code}: {placed.text[:500]}")
        started = time.perf_counter()
        fetched = client.get(placed.json()["codes_url"])
        get_s = time.perf_counter() - started
    fetched.raise_for_status()
    codes = [entry["code"] for entry in fetched.json()["codes"]]
    return BigOrderResult(quantity, post_s, get_s, len(codes), len(set(codes)))


def sell(server: Server, shop: Shop, codes: int, per_order: int = config.BIG_ORDER) -> float:
    """Sell ``codes`` codes of the product through the API, ``per_order`` at a time; seconds."""
    headers = {"Authorization": f"Bearer {shop.api_key}"}
    started = time.perf_counter()
    with httpx.Client(base_url=server.url, headers=headers, timeout=300) as client:
        for start in range(0, codes, per_order):
            placed = client.post(
                "/api/v1/orders",
                json={"product_id": config.SKU, "quantity": min(per_order, codes - start)},
                headers={"Idempotency-Key": str(uuid.uuid4())},
            )
            if placed.status_code != 201 or placed.json()["status"] != "delivered":
                raise RuntimeError(f"selling stock got {placed.status_code}: {placed.text[:500]}")
    return time.perf_counter() - started


def pick_pages(target: Target) -> int | None:
    """Pages (buffers) the scan of one 1-code pick reads on PostgreSQL: EXPLAIN (ANALYZE,
    BUFFERS) of the scan orders run, its locks released at once. None on SQLite."""
    if target.cluster is None:
        return None
    from codeshelf.stock.service.allocation import POSTGRESQL_SCAN

    sql = POSTGRESQL_SCAN.replace(":product", "%(product)s").replace(":quantity", "1")
    with psycopg.connect(target.cluster.libpq(DATABASE)) as conn:
        found = conn.execute("SELECT id FROM products WHERE sku = %s", (config.SKU,)).fetchone()
        plan = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", {"product": found and found[0]})
        lines = [row[0] for row in plan]
        conn.rollback()
    top = next(line for line in lines if "Buffers:" in line)
    return sum(int(n) for n in re.findall(r"(?:hit|read)=(\d+)", top))


def inventory_ms(server: Server, shop: Shop, calls: int = 20) -> float:
    """The median time of one GET /inventory (it counts the codes in stock), sequentially."""
    headers = {"Authorization": f"Bearer {shop.api_key}"}
    times = []
    with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
        for _ in range(calls):
            started = time.perf_counter()
            client.get("/api/v1/inventory").raise_for_status()
            times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2] * 1000


@dataclass(frozen=True)
class SoldResults:
    """1-code orders on fresh stock, then again after ``sold`` codes were sold."""

    sold: int
    sell_s: float
    fresh: WrkResult
    fresh_pages: int | None
    after: WrkResult
    after_cpu: CpuShares
    after_pages: int | None
    inventory_ms: float  # one GET /inventory, the median of 20, with the stock left

    @property
    def ratio(self) -> float:
        return self.after.rate / self.fresh.rate

    def as_json(self) -> dict[str, Any]:
        return {
            "sold_before": self.sold,
            "sell_s": self.sell_s,
            "pick_pages_fresh": self.fresh_pages,
            "pick_pages_after": self.after_pages,
            "orders_after": {**self.after.as_json(), "cpu_cores": self.after_cpu.as_json()},
            "after_per_fresh": self.ratio,
            "inventory_ms": self.inventory_ms,
        }


def after_sales(
    load: Load,
    target: Target,
    server: Server,
    shop: Shop,
    cfg: config.BenchConfig,
    fresh: WrkResult,
    fresh_pages: int | None,
) -> SoldResults:
    """Sell ``cfg.sold_before`` codes in 10,000-code orders, give the worker (running beside
    the server, as in production) two polls, then 1-code orders under wrk again."""
    sell_s = sell(server, shop, cfg.sold_before)
    time.sleep(2 * config.WORKER_POLL_S + 0.5)
    pages = pick_pages(target)
    url, key = server.url, shop.api_key
    load.orders(url, key, config.SKU, cfg.warmup_s)
    after, cpu = measured(target, server, lambda: load.orders(url, key, config.SKU, cfg.duration_s))
    inventory = inventory_ms(server, shop)
    return SoldResults(cfg.sold_before, sell_s, fresh, fresh_pages, after, cpu, pages, inventory)


@dataclass(frozen=True)
class PgbenchResult:
    tps: float
    scale: int
    clients: int
    init_s: float
    output: str

    def as_json(self) -> dict[str, Any]:
        return {
            "tps": self.tps,
            "scale": self.scale,
            "clients": self.clients,
            "init_s": self.init_s,
            "output": self.output,
        }


def pgbench(bindir: Path, target: Target, cfg: config.BenchConfig) -> PgbenchResult:
    """TPC-B-like pgbench on the same cluster, in a database of its own."""
    assert target.cluster is not None
    cluster = target.cluster
    cluster.execute("CREATE DATABASE pgbench")
    conn = ["-h", str(cluster.socket_dir), "-p", str(cluster.port), "-U", "postgres"]
    exe = str(bindir / "pgbench")
    started = time.perf_counter()
    _check([exe, "-i", "-q", "-s", str(cfg.pgbench_scale), *conn, "pgbench"])
    init_s = time.perf_counter() - started
    run = [exe, "-c", str(cfg.connections), "-j", str(cfg.wrk_threads)]
    out = _check([*run, "-T", str(cfg.duration_s), *conn, "pgbench"])
    found = re.search(r"^tps = ([\d.]+)", out, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"pgbench printed no tps:\n{out}")
    return PgbenchResult(float(found.group(1)), cfg.pgbench_scale, cfg.connections, init_s, out)


def _check(argv: list[str]) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr}")
    return done.stdout
