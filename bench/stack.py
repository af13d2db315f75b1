"""The system under test: a database (a fresh PostgreSQL cluster or a SQLite file), the demo
data made through the real CLI, and ``codeshelf serve`` as a separate process.

Every piece is a context manager, so servers and clusters stop on errors and on Ctrl-C.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from tests.fixtures.postgres import PostgresCluster

from bench import config
from bench.procs import (
    background,
    children_of,
    cli,
    cli_json,
    codeshelf_executable,
    free_port,
    log_tail,
    tree_cpu_s,
)

DATABASE = "codeshelf"
WORKERS = len(os.sched_getaffinity(0))  # server processes, codeshelf's and the reference's
SECRET = secrets.token_urlsafe(32)  # one per run: encrypts the codes of the throwaway databases


@dataclass(frozen=True)
class Target:
    """One database to benchmark: its name, its URL, and (for PostgreSQL) its cluster."""

    name: str
    url: str
    workdir: Path
    cluster: PostgresCluster | None = None

    def env(self) -> dict[str, str]:
        """The environment of every codeshelf subprocess: no inherited CODESHELF_* settings.

        Webhook URLs on loopback over plain http are allowed: the webhook figures' receiver is
        one (this only lifts a check made when an endpoint is registered and before each send).
        The big order is not "unusual" (manual review for orders over 10 times the partner's
        median): after thousands of 1-code orders it would otherwise wait for an operator.
        """
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("CODESHELF_")}
        return {
            **inherited,
            "CODESHELF_DATABASE_URL": self.url,
            "CODESHELF_SECRET_KEY": SECRET,
            "CODESHELF_RATE_LIMIT_PER_MINUTE": str(config.RATE_LIMIT),
            "CODESHELF_WEBHOOK_ALLOW_PRIVATE": "true",
            "CODESHELF_REVIEW_UNUSUAL_FLOOR": str(config.BIG_ORDER),
        }

    def backend_pids(self) -> list[int]:
        """PostgreSQL's server processes (the postmaster's children); none for SQLite."""
        if self.cluster is None:
            return []
        return children_of(self._postmaster())

    def database_cpu_s(self) -> float:
        """CPU seconds all of PostgreSQL's processes have used so far; 0 for SQLite (in process)."""
        return 0.0 if self.cluster is None else tree_cpu_s(self._postmaster())

    def _postmaster(self) -> int:
        assert self.cluster is not None
        return int((self.cluster.data / "postmaster.pid").read_text().split("\n", 1)[0])


@contextmanager
def postgres(bindir: Path, workdir: Path) -> Iterator[Target]:
    """A fresh cluster with fsync on (realistic durability), stopped however we leave."""
    cluster = PostgresCluster(bindir, fsync=True, tcp=False)
    try:
        cluster.start()
        cluster.execute(f"CREATE DATABASE {DATABASE}")
        yield Target("postgres", cluster.url(DATABASE), workdir, cluster)
    finally:
        _stop_cluster(cluster)


def _stop_cluster(cluster: PostgresCluster) -> None:
    try:
        cluster.stop()
    except subprocess.CalledProcessError as exc:  # e.g. it already died with Ctrl-C
        print(f"note: stopping PostgreSQL: {exc.stderr.decode(errors='replace').strip()}")


@contextmanager
def sqlite(workdir: Path) -> Iterator[Target]:
    yield Target("sqlite", f"sqlite:///{workdir / 'codeshelf.db'}", workdir)


@dataclass(frozen=True)
class Shop:
    partner_id: str
    api_key: str


def prepare(target: Target) -> Shop:
    """Migrate, then add the product, a partner and a large deposit, all through the CLI."""
    env, cwd = target.env(), target.workdir
    cli(env, cwd, "migrate")
    product = f"product add {config.SKU} --region US --face-value 50 --currency USD"
    cli(env, cwd, *product.split(), "--price", config.PRICE)
    partner = cli_json(
        env, cwd, "partner", "create", "Bench Reseller", "--rate-limit", str(config.RATE_LIMIT)
    )
    deposit = f"wallet deposit {partner['partner_id']} {config.DEPOSIT} --currency USD"
    cli(env, cwd, *deposit.split(), "--reference", "bench-deposit")
    return Shop(partner["partner_id"], partner["api_key"])


@dataclass(frozen=True)
class Server:
    url: str
    pid: int


@contextmanager
def serve(target: Target, shop: Shop) -> Iterator[Server]:
    """``codeshelf serve`` in its own session (Ctrl-C is ours to handle), stopped on exit."""
    port = free_port()
    log = target.workdir / f"serve-{port}.log"
    argv = [codeshelf_executable(), "serve", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--workers", str(WORKERS)]  # as with a shared rate-limit store in production
    with background(argv, env=target.env(), cwd=target.workdir, log=log) as proc:
        server = Server(f"http://127.0.0.1:{port}", proc.pid)
        if not _ready(server, shop, proc):
            raise RuntimeError(
                f"codeshelf serve did not come up (exit {proc.poll()}):\n{log_tail(log)}"
            )
        yield server


@contextmanager
def reference(target: Target, shop: Shop) -> Iterator[Server]:
    """``bench/reference.py`` (one indexed SELECT, async) served like ``codeshelf serve``."""
    port = free_port()
    log = target.workdir / f"reference-{port}.log"
    database = (
        target.cluster.libpq(DATABASE)
        if target.cluster is not None
        else target.url.removeprefix("sqlite:///")
    )
    env = {**os.environ, "BENCH_REFERENCE_DATABASE": database}
    argv = [
        str(Path(codeshelf_executable()).with_name("uvicorn")), "bench.reference:app",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(WORKERS), "--no-access-log",
        "--log-level", "warning",
    ]  # fmt: skip
    cwd = Path(__file__).resolve().parents[1]
    with background(argv, env=env, cwd=cwd, log=log) as proc:
        server = Server(f"http://127.0.0.1:{port}", proc.pid)
        if not _ready(server, shop, proc, f"/balance/{shop.partner_id}"):
            raise RuntimeError(f"the reference did not come up:\n{log_tail(log)}")
        yield server


def _ready(
    server: Server, shop: Shop, proc: subprocess.Popen[bytes], path: str = "/api/v1/balance"
) -> bool:
    """Wait (up to a minute) until an authenticated GET ``path`` answers 200."""
    deadline = time.monotonic() + 60
    headers = {"Authorization": f"Bearer {shop.api_key}"}
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"{server.url}{path}", headers=headers).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    return False
