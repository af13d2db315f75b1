"""The reference for order throughput: the SQL of one real 1-code order, replayed by pgbench.

One order is placed in process through the real app on the bench's database while every
statement it sends is captured with its parameters and, for statements returning rows, what
they returned. The trace becomes a pgbench script: the same statements in the same
transactions; ids an earlier statement returned are passed on with ``\\gset``; values that must
be unique (the idempotency key, public ids) are made fresh in every run. pgbench then runs it
with as many clients as wrk has connections: what the database sustains for exactly the work an
order asks of it, with none of the Python in between.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy import event

from bench import config
from bench.stack import SECRET, Shop, Target

# Parameters whose value must differ in every replayed order: unique keys and public ids.
_UNIQUE = re.compile(r"^(ord|txn|evt|dlv)_[0-9a-f]+$|^[0-9a-f]{8}-[0-9a-f]{4}-")


@dataclass
class Statement:
    sql: str
    params: Any
    returned: list[tuple[Any, ...]]
    columns: list[str]


def capture(target: Target, shop: Shop) -> list[Statement]:
    """Every statement of one 1-code order placed through the app, with what each returned."""
    from codeshelf.api.app import create_app
    from codeshelf.kit.db import Database
    from codeshelf.kit.settings import Settings
    from codeshelf.kit.tokens import hash_key
    from codeshelf.partners.service import AUTHENTICATE

    settings = Settings(
        database_url=target.url,
        secret_key=SECRET,
        rate_limit_per_minute=config.RATE_LIMIT,
        review_unusual_floor=config.BIG_ORDER,
        _env_file=None,
    )
    db = Database(target.url)
    trace: list[Statement] = []

    def _transaction(command: str) -> Any:
        return lambda *_args: trace.append(Statement(command, None, [], []))

    event.listen(db.engine, "begin", _transaction("BEGIN"))
    event.listen(db.engine, "commit", _transaction("COMMIT"))
    event.listen(db.engine, "rollback", _transaction("ROLLBACK"))

    @event.listens_for(db.engine, "after_cursor_execute")
    def _captured(_c: Any, cursor: Any, sql: str, params: Any, _x: Any, _many: bool) -> None:
        rows, columns = [], []
        if cursor.description:
            columns = [column.name for column in cursor.description]
            rows = cursor.fetchall()
            if rows:
                cursor.scroll(0, mode="absolute")  # SQLAlchemy reads them again
        trace.append(Statement(sql, params, rows, columns))

    async def order() -> None:
        transport = httpx.ASGITransport(app=create_app(settings, db))
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            placed = await client.post(
                "/api/v1/orders",
                json={"product_id": config.SKU, "quantity": 1},
                headers={
                    "Authorization": f"Bearer {shop.api_key}",
                    "Idempotency-Key": str(uuid.uuid4()),
                },
            )
        await db.reads.aclose()
        if placed.status_code != 201:
            raise RuntimeError(f"the captured order got {placed.status_code}: {placed.text}")

    _spread_sequences(target)
    asyncio.run(order())
    db.dispose()
    # Authentication reads through the async pool, outside SQLAlchemy's events: add it.
    compiled = AUTHENTICATE.compile(dialect=db.engine.dialect)
    auth = Statement(str(compiled), {"digest": hash_key(shop.api_key)}, [], [])
    return [auth, *trace]


def _spread_sequences(target: Target) -> None:
    """Move each table's id sequence to a range of its own, so an id in the trace names one row:
    an order's id and its item's id would otherwise often be the same number."""
    libpq = target.url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(libpq, autocommit=True) as conn:
        names = [row[0] for row in conn.execute("SELECT sequencename FROM pg_sequences ORDER BY 1")]
        for number, name in enumerate(names, start=1):
            conn.execute(
                "SELECT setval(%s, GREATEST(nextval(%s), %s))", (name, name, number * 10**9)
            )


def script(trace: list[Statement], libpq: str) -> str:
    """The pgbench script of a trace (see the module's docstring)."""
    lines: list[str] = []
    passed: dict[Any, str] = {}  # a returned value -> the pgbench variable holding it
    with psycopg.connect(libpq) as conn, psycopg.ClientCursor(conn) as cursor:
        for number, statement in enumerate(trace):
            sql = " ".join(_render(cursor, statement, passed).split())
            if statement.returned and len(statement.returned) == 1:
                prefix = f"s{number}_"
                for column, value in zip(statement.columns, statement.returned[0], strict=True):
                    if isinstance(value, int) and value > 1000:  # ids, not flags or counts
                        passed[value] = f"{prefix}{column}"
                lines += [sql, f"\\gset {prefix}"]  # \gset ends the query in place of ";"
            else:
                lines.append(sql + ";")
    return "\n".join(lines) + "\n"


def _render(cursor: Any, statement: Statement, passed: dict[Any, str]) -> str:
    if statement.sql.strip().upper() in {"BEGIN", "COMMIT", "ROLLBACK"}:
        return statement.sql
    params = _substitute(statement.params, passed)
    if isinstance(params, list):  # executemany: the statement once per row
        rendered = "; ".join(cursor.mogrify(statement.sql, row) for row in params)
    else:
        rendered = cursor.mogrify(statement.sql, params) if params else statement.sql
    for sentinel, expression in _SENTINELS.items():
        rendered = rendered.replace(sentinel, expression)
    _SENTINELS.clear()
    return rendered


_SENTINELS: dict[str, str] = {}


def _substitute(params: Any, passed: dict[Any, str]) -> Any:
    if isinstance(params, list):
        return [_substitute(item, passed) for item in params]
    if not isinstance(params, dict):
        return params
    out: dict[str, Any] = {}
    for name, value in params.items():
        if isinstance(value, int) and value in passed:
            sentinel = 9_000_000_000_000 + len(_SENTINELS)
            _SENTINELS[str(sentinel)] = f":{passed[value]}"
            out[name] = sentinel
        elif isinstance(value, str) and _UNIQUE.match(value):
            sentinel_text = f"zzunique{len(_SENTINELS)}zz"
            prefix = value.split("_", 1)[0] + "_" if "_" in value[:5] else ""
            _SENTINELS[f"'{sentinel_text}'"] = (
                f"('{prefix}' || substr(md5(random()::text || clock_timestamp()::text), 1, 20))"
            )
            out[name] = sentinel_text
        else:
            out[name] = value
    return out


_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


@dataclass(frozen=True)
class ReplayResult:
    tps: float
    statements: int  # SQL statements of one order (executemany rows each count)
    round_trips: int  # statements, savepoints, BEGINs and COMMITs
    transactions: int
    clients: int
    output: str

    def as_json(self) -> dict[str, Any]:
        return {
            "tps": self.tps,
            "statements_per_order": self.statements,
            "round_trips_per_order": self.round_trips,
            "transactions_per_order": self.transactions,
            "clients": self.clients,
            "output": self.output[-2000:],
        }


def replay(bindir: Path, target: Target, shop: Shop, cfg: config.BenchConfig) -> ReplayResult:
    """Capture one order, then pgbench its SQL with ``cfg.connections`` clients."""
    import subprocess

    assert target.cluster is not None
    cluster = target.cluster
    trace = capture(target, shop)
    path = target.workdir / "order-replay.sql"
    path.write_text(script(trace, cluster.libpq("codeshelf")))
    conn = ["-h", str(cluster.socket_dir), "-p", str(cluster.port), "-U", "postgres"]
    argv = [str(bindir / "pgbench"), "-n", "-c", str(cfg.connections), "-j", str(cfg.wrk_threads)]
    argv += ["-T", str(cfg.duration_s), "-f", str(path), *conn, "codeshelf"]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"pgbench replay exited {done.returncode}:\n{done.stderr[-3000:]}")
    found = re.search(r"^tps = ([\d.]+)", done.stdout, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"pgbench printed no tps:\n{done.stdout}")
    kinds = [s.sql.strip().split(None, 1)[0].upper() for s in trace]
    sent = [len(s.params) if isinstance(s.params, list) else 1 for s in trace]
    statements = sum(n for kind, n in zip(kinds, sent, strict=True) if kind not in _CONTROL)
    transactions = kinds.count("BEGIN") + 1  # and authentication's read, on autocommit
    tps = float(found.group(1))
    return ReplayResult(tps, statements, sum(sent), transactions, cfg.connections, done.stdout)
