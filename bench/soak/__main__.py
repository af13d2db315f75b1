"""``make soak``: a crash soak of codeshelf on one throwaway PostgreSQL.

Several ``codeshelf serve`` processes and two ``codeshelf worker`` run against one database
while partner threads order (retrying with the same Idempotency-Key, sometimes three at once),
backorder, reveal codes and file claims with screenshots, an operator approves the claims, stock
is imported (directly and through the workers, with duplicates), and webhooks go to receivers
that succeed, fail, hang and misbehave. Every few seconds a random server or worker is killed
with SIGKILL (one time in five stopped with SIGTERM, gracefully) and started again. Then the
traffic stops, a last import lets backorders fill, the workers drain, and the checks run
(``bench/soak/checks.py``); the exit status is 1 on any violation.

``SOAK_SECONDS`` (default 600) bounds the traffic; ``SOAK_SERVERS`` (3), ``SOAK_PARTNERS`` (6),
``SOAK_KILL_EVERY`` (seconds between kills, 4) and ``SOAK_SEED`` tune it; ``SOAK_SRC`` runs the
processes on another tree's ``src``; ``SOAK_KEEP=1`` keeps the processes' logs of a clean run.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
from tests.fixtures.postgres import PostgresCluster, find_bindir

from bench.procs import background, cli, cli_json, free_port
from bench.soak import checks
from bench.soak.fleet import Fleet
from bench.soak.receiver import BEHAVIOURS
from bench.soak.stock import Stock
from bench.soak.traffic import Api, Partner, Tally, operator_pass

SKUS = ("psn-us-50", "psn-us-25")
DRAIN_S = 240  # at most, after the traffic: killed workers' holds (60 s) expire, queues empty
ROOT = Path(__file__).resolve().parents[2]
BAD = [b for b in BEHAVIOURS if b not in ("ok", "flaky")]


def _log(message: str) -> None:
    print(f"· {time.strftime('%H:%M:%S')} {message}", flush=True)


@dataclass
class Config:
    seconds: float = float(os.environ.get("SOAK_SECONDS", "600"))
    servers: int = int(os.environ.get("SOAK_SERVERS", "3"))
    partners: int = int(os.environ.get("SOAK_PARTNERS", "6"))
    kill_every: float = float(os.environ.get("SOAK_KILL_EVERY", "4"))
    seed: int = int(os.environ.get("SOAK_SEED", str(random.randrange(1 << 30))))


@dataclass
class Run:
    cfg: Config
    workdir: Path
    env: dict[str, str]
    libpq: str
    rng: random.Random
    tally: Tally = field(default_factory=Tally)
    partners: list[Partner] = field(default_factory=list)
    kills: Counter[str] = field(default_factory=Counter)
    stop: threading.Event = field(default_factory=threading.Event)


@contextmanager
def database(workdir: Path) -> Iterator[tuple[str, str]]:
    bindir = find_bindir()
    if bindir is None:
        raise SystemExit("no PostgreSQL binaries (scripts/ensure-postgres.sh installs them)")
    cluster = PostgresCluster(bindir, settings={"max_connections": "300"})
    cluster.start()
    try:
        cluster.execute("CREATE DATABASE codeshelf")
        yield cluster.url("codeshelf"), cluster.libpq("codeshelf")
    finally:
        try:
            cluster.stop()
        except subprocess.CalledProcessError as exc:
            print(f"note: stopping PostgreSQL: {exc.stderr.decode(errors='replace')}")


def environment(url: str, workdir: Path) -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("CODESHELF_")}
    # This tree's code, whichever checkout the venv was installed from (or SOAK_SRC's).
    src = os.environ.get("SOAK_SRC") or str(ROOT / "src")
    return {
        **inherited,
        "PYTHONPATH": os.pathsep.join([src, *filter(None, [os.environ.get("PYTHONPATH")])]),
        "CODESHELF_DATABASE_URL": url,
        "CODESHELF_SECRET_KEY": "soak-" + os.urandom(16).hex(),
        "CODESHELF_WEBHOOK_ALLOW_PRIVATE": "true",  # the receivers are on loopback
        "CODESHELF_RATE_LIMIT_PER_MINUTE": "100000",
        "CODESHELF_OPERATOR_RATE_LIMIT_PER_MINUTE": "100000",
        "CODESHELF_REVIEW_UNUSUAL_FLOOR": "100000",  # backorders of 40 are not "unusual"
        "CODESHELF_EVIDENCE_DIR": str(workdir / "evidence"),
        "CODESHELF_IMPORT_DIR": str(workdir / "imports"),
    }


def prepare(run: Run, stock: Stock) -> tuple[list[tuple[str, str]], str]:
    """Schema, products, partners with deposits, an operator key, the first stock."""
    env, cwd = run.env, run.workdir
    cli(env, cwd, "migrate")
    for sku, face in zip(SKUS, ("50", "25"), strict=True):
        cli(env, cwd, "product", "add", sku, "--region", "US", "--face-value", face,
            "--currency", "USD", "--price", str(int(face) - 3))  # fmt: skip

    def partner(n: int) -> tuple[str, str]:
        made = cli_json(env, cwd, "partner", "create", f"Soak {n}", "--rate-limit", "100000")
        cli(env, cwd, "wallet", "deposit", made["partner_id"], "50000.00", "--currency", "USD",
            "--reference", f"soak-deposit-{n}")  # fmt: skip
        return made["partner_id"], made["api_key"]

    with ThreadPoolExecutor(4) as pool:  # each CLI call is mostly Python's start-up
        partners = list(pool.map(partner, range(run.cfg.partners)))
        loads = [pool.submit(stock.load, sku, 400) for sku in SKUS]
        operator = cli_json(env, cwd, "operator", "key", "create", "soak")
        for load in loads:
            load.result()
    return partners, str(operator["api_key"])


def register_webhooks(run: Run, receiver: str) -> None:
    """Each partner: a receiver that always answers 2xx, a flaky one, and two that misbehave."""
    for n, partner in enumerate(run.partners):
        urls = ["ok", "flaky", BAD[(2 * n) % len(BAD)], BAD[(2 * n + 1) % len(BAD)]]
        for behaviour in urls:
            response = partner.api.call(
                "POST",
                "/api/v1/webhook-endpoints",
                json={"url": f"{receiver}/{behaviour}/{partner.name}"},
            )
            if response is None or response.status_code != 201:
                raise RuntimeError(f"webhook endpoint refused: {response and response.text}")


def loop(run: Run, every: tuple[float, float], work: Any) -> threading.Thread:
    def body() -> None:
        rng = random.Random(run.rng.random())
        while not run.stop.wait(rng.uniform(*every)):
            try:
                work()
            except Exception as exc:  # a client bug: counted, and the soak goes on
                run.tally.surprise(f"{getattr(work, '__name__', work)}: {exc!r}")

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    return thread


def traffic(run: Run, fleet: Fleet, stock: Stock, operator: Api) -> None:
    threads = [loop(run, (0.0, 0.05), partner.step) for partner in run.partners]
    threads.append(loop(run, (0.5, 1.5), lambda: operator_pass(operator, run.tally)))

    def restock() -> None:
        sku = run.rng.choice(SKUS)
        roll = run.rng.random()
        if roll < 0.1:  # yesterday's file again: all duplicates
            stock.load(sku, 0, duplicates=50)
        else:
            stock.load(sku, run.rng.randint(50, 200), duplicates=3, background=roll < 0.5)

    threads.append(loop(run, (2.0, 5.0), restock))

    def chaos() -> None:
        run.kills[fleet.kill_one(run.rng)] += 1

    threads.append(loop(run, (run.cfg.kill_every * 0.5, run.cfg.kill_every * 1.5), chaos))
    threads.append(loop(run, (0.5, 0.5), fleet.revive_the_dead))
    end = time.monotonic() + run.cfg.seconds
    while time.monotonic() < end:
        time.sleep(min(10, end - time.monotonic()) if end > time.monotonic() else 0)
        _log(f"{sum(run.kills.values())} kills; {shelf(run)}; {dict(run.tally.ops.most_common(6))}")
    run.stop.set()
    for thread in threads:
        thread.join(timeout=RETRY_JOIN_S)


RETRY_JOIN_S = 150


def shelf(run: Run) -> str:
    """Each product's codes on sale and backorders waiting, now."""
    found = checks.rows(
        run.libpq,
        """SELECT p.sku, count(c.id) FILTER (WHERE c.state = 'available'),
           (SELECT count(*) FROM orders o JOIN order_items i ON i.order_id = o.id
            WHERE i.product_id = p.id AND o.status = 'pending' AND o.hold_reason = 'stock')
           FROM products p LEFT JOIN codes c ON c.product_id = p.id GROUP BY p.id, p.sku""",
    )
    return ", ".join(f"{sku} {free} on sale, {waiting} backorders" for sku, free, waiting in found)


def drained(run: Run, fleet: Fleet) -> bool:
    fleet.revive_the_dead()
    (busy,) = checks.rows(
        run.libpq,
        """SELECT (SELECT count(*) FROM stock_import_jobs WHERE status IN ('queued', 'running'))
           + (SELECT count(*) FROM webhook_deliveries d JOIN webhook_endpoints w
              ON w.id = d.endpoint_id WHERE d.state = 'pending' AND w.url LIKE %s)
           + (SELECT count(*) FROM orders WHERE status IN ('pending', 'paid')
              AND hold_reason = 'stock')""",
        "%/ok/%",
    )[0]
    return busy == 0


def drain(run: Run, fleet: Fleet, stock: Stock) -> float:
    """A last import covering every backorder, then wait for the workers to catch up."""
    started = time.monotonic()
    waiting = dict(
        checks.rows(
            run.libpq,
            """SELECT p.sku, coalesce(sum(i.quantity), 0) FROM orders o
               JOIN order_items i ON i.order_id = o.id JOIN products p ON p.id = i.product_id
               WHERE o.status = 'pending' GROUP BY p.sku""",
        )
    )
    for sku in SKUS:
        stock.load(sku, int(waiting.get(sku, 0)) + 100)
    while time.monotonic() - started < DRAIN_S and not drained(run, fleet):
        time.sleep(2)
    return time.monotonic() - started


def final_reveal(run: Run) -> dict[str, list[str]]:
    """Every delivered order's codes, read back through its partner's API."""
    by_partner = {p.partner_id: p for p in run.partners}
    revealed: dict[str, list[str]] = {}
    for public_id, partner_id in checks.rows(
        run.libpq,
        """SELECT o.public_id, p.public_id FROM orders o JOIN partners p ON p.id = o.partner_id
           WHERE o.status = 'delivered'""",
    ):
        partner = by_partner[partner_id]
        if public_id not in partner.revealed:
            partner.reveal(public_id)
        revealed[public_id] = partner.revealed.get(public_id, [])
    return revealed


def verdict(run: Run, fleet: Fleet, stock: Stock, started: date, receiver: str) -> list[str]:
    found = list(run.tally.server_errors) + list(run.tally.surprises) + fleet.deaths()
    found += [f"stock import failed: {failure}" for failure in stock.failures]
    found += checks.imports_finished(run.libpq)
    days = checks.days_between(started, datetime.now(UTC).date())
    found += checks.ledger_and_reconciliation(run.env, run.workdir, days)
    key_problems, key_counts = checks.keys(run.libpq, run.partners)
    found += key_problems
    code_problems, states = checks.codes(run.libpq, stock.codes, final_reveal(run))
    found += code_problems
    hook_problems, hooks = checks.webhooks(run.libpq, httpx.get(f"{receiver}/stats").json())
    found += hook_problems
    print("\n=== soak figures")
    print(f"seed {run.cfg.seed}, {run.cfg.seconds:g} s of traffic, {run.cfg.servers} servers, "
          f"2 workers, {run.cfg.partners} partners")  # fmt: skip
    print(f"kills (restarted at once): {dict(run.kills)} — {sum(run.kills.values())} in all")
    print(f"unexpected exits: {len(fleet.deaths())}")
    for what, count in sorted(run.tally.ops.items()):
        print(f"  {what}: {count}")
    print(f"keys: {dict(key_counts)}")
    print(f"stock imports: {stock.imports} ({stock.background} through the workers), "
          f"{len(stock.codes)} distinct codes; codes by state: {states}")  # fmt: skip
    print(f"orders: {dict(checks.order_states(run.libpq))}")
    print(f"claims: {dict(checks.claim_states(run.libpq))}")
    for behaviour, states_ in sorted(hooks.items()):
        print(f"  webhooks to '{behaviour}' receivers: {dict(states_)}")
    return found


def main() -> int:
    cfg = Config()
    rng = random.Random(cfg.seed)
    workdir = Path(tempfile.mkdtemp(prefix="codeshelf-soak-"))
    with database(workdir) as db:
        run = Run(cfg, workdir, environment(db[0], workdir), db[1], rng)
        _log(f"soak: seed {cfg.seed}, {cfg.seconds:g} s, PostgreSQL at {db[1]}")
        stock = Stock(run.env, workdir, random.Random(rng.random()))
        credentials, operator_key = prepare(run, stock)
        port = free_port()
        receiver = f"http://127.0.0.1:{port}"
        argv = [sys.executable, "-m", "bench.soak.receiver", str(port)]
        with background(argv, env=dict(os.environ), cwd=ROOT, log=workdir / "receiver.log"):
            fleet = Fleet(run.env, workdir, cfg.servers, workers=2)
            try:
                fleet.start_all(credentials[0][1])
                for n, (partner_id, key) in enumerate(credentials):
                    api = Api(fleet.urls, key, random.Random(rng.random()), run.tally)
                    own = random.Random(rng.random())
                    partner = Partner(f"p{n}", partner_id, api, list(SKUS), run.tally, own)
                    run.partners.append(partner)
                register_webhooks(run, receiver)
                operator = Api(fleet.urls, operator_key, random.Random(rng.random()), run.tally)
                _log(f"traffic for {cfg.seconds:g} s; kill -9 every ~{cfg.kill_every:g} s")
                started = datetime.now(UTC).date()
                traffic(run, fleet, stock, operator)
                _log("traffic stopped; last import, then draining")
                took = drain(run, fleet, stock)
                _log(f"drained in {took:.0f} s; checking")
                found = verdict(run, fleet, stock, started, receiver)
            finally:
                fleet.stop_all()
    print(f"\n=== {len(found)} violation(s)")
    for problem in found[:200]:
        print(f"VIOLATION: {problem}")
    if found or os.environ.get("SOAK_KEEP"):
        print(f"logs of every process kept in {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
