"""The ``codeshelf`` command line for the operator: one module per command group.

Commands only parse their arguments, call a service and print; ``--json`` prints one JSON
document on stdout, errors go to stderr with exit code 1.
"""

from __future__ import annotations

import os
import signal
from types import FrameType
from typing import Annotated

import typer
import uvicorn

from codeshelf.cli import context, demo
from codeshelf.cli.applications import application_app
from codeshelf.cli.audit import audit_search
from codeshelf.cli.claims import claims_app
from codeshelf.cli.ledger import ledger_app
from codeshelf.cli.observe import (
    LogFormatOption,
    MetricsHostOption,
    MetricsPortOption,
    log_format,
    metrics_listener,
)
from codeshelf.cli.operators import operator_app
from codeshelf.cli.options import JsonOption
from codeshelf.cli.orders import orders_app
from codeshelf.cli.output import domain_errors, emit, err, fail, say
from codeshelf.cli.partners import partner_app
from codeshelf.cli.prices import price_app
from codeshelf.cli.products import product_app
from codeshelf.cli.reconcile import reconcile
from codeshelf.cli.secrets import secrets_app
from codeshelf.cli.stock import stock_app
from codeshelf.cli.wallet import wallet_app
from codeshelf.cli.webhooks import webhooks_app
from codeshelf.cli.worker import worker
from codeshelf.kit import logs, migrate
from codeshelf.kit.db import Database
from codeshelf.kit.settings import RATE_LIMITS_IN_MEMORY, MissingSecretKeyError, Settings
from codeshelf.worker.gauges import StateCollector

# Rich tracebacks would print local variables, and locals can hold codes or keys.
app = typer.Typer(
    no_args_is_help=True,
    help="Operate a codeshelf wholesale platform.",
    pretty_exceptions_enable=False,
)
for group, name in (
    (product_app, "product"),
    (partner_app, "partner"),
    (price_app, "price"),
    (wallet_app, "wallet"),
    (stock_app, "stock"),
    (ledger_app, "ledger"),
    (claims_app, "claims"),
    (orders_app, "orders"),
    (operator_app, "operator"),
    (webhooks_app, "webhooks"),
    (application_app, "application"),
    (secrets_app, "secrets"),
):
    app.add_typer(group, name=name)
app.command("worker")(worker)
app.command("reconcile")(reconcile)
app.command("audit")(audit_search)


@app.callback()
def main(
    ctx: typer.Context,
    acting_as: Annotated[
        str | None,
        typer.Option(
            "--as",
            envvar="CODESHELF_STAFF_EMAIL",
            help="Act as this staff member: the audit log names them, and decisions that need "
            "a second person (four eyes) know who the first was.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Operate a codeshelf wholesale platform."""
    context.adopt(ctx.obj)
    context.act_as(acting_as)


@app.command("migrate")
def migrate_command() -> None:
    """Upgrade the database schema to the latest version."""
    migrate.upgrade(context.settings().database_url)
    say("database schema is current", console=err)


def _cores() -> int:
    """The cores this process may run on (a container's CPU set, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _default_workers(settings: Settings) -> int:
    """One process per core when the rate limits are counted in a shared store; one process
    with the in-memory count, which each process would keep on its own (N times the limit)."""
    if settings.rate_limit_storage != RATE_LIMITS_IN_MEMORY:
        return _cores()
    if _cores() > 1:
        say(
            "serving with one process: rate limits are counted in this process's memory. Set "
            "CODESHELF_RATE_LIMIT_STORAGE=redis://… to serve with one process per core, or "
            "pass --workers",
            console=err,
        )
    return 1


def _stopped(_signal: int, _frame: FrameType | None) -> None:
    """SIGTERM is a stop asked for: exit 0. uvicorn handles it while serving (a graceful
    shutdown), then raises it again for the handler it found, this one."""
    raise SystemExit(0)


WORKER_STARTUP_S = 60  # how long `serve --workers N` waits for a server process to start


@app.command()
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Server processes. [default: one per core with a shared rate-limit store "
            "(CODESHELF_RATE_LIMIT_STORAGE), else 1]",
            show_default=False,
        ),
    ] = None,
    access_log: Annotated[
        bool, typer.Option(help="Log a line per request (request id, route, status, duration).")
    ] = True,
    proxy_headers: Annotated[
        bool,
        typer.Option(
            help="Take the client's address and scheme from X-Forwarded-For and "
            "X-Forwarded-Proto, when the connection comes from --forwarded-allow-ips."
        ),
    ] = True,
    forwarded_allow_ips: Annotated[
        str,
        typer.Option(
            envvar="CODESHELF_FORWARDED_ALLOW_IPS",
            help="The reverse proxies whose X-Forwarded-* headers are believed: addresses or "
            "networks, comma separated. Anyone else's are ignored.",
        ),
    ] = "127.0.0.1",
    log_format_name: LogFormatOption = "auto",
    metrics_port: MetricsPortOption = None,
    metrics_host: MetricsHostOption = "127.0.0.1",
) -> None:
    """Serve the HTTP API (migrating the schema first when it is behind).

    uvloop and httptools run the event loop and parse HTTP where they are installed (they are
    dependencies on Linux and macOS). SIGTERM (or Ctrl-C) stops it gracefully: no new
    connections, the requests in flight answered (up to CODESHELF_SHUTDOWN_GRACE_SECONDS).
    """
    settings = context.settings()
    try:
        settings.require_secret()
    except MissingSecretKeyError as exc:
        fail(str(exc))
    signal.signal(signal.SIGTERM, _stopped)
    migrate.ensure_current(settings.database_url)
    processes = workers or _default_workers(settings)
    state = Database(settings.database_url)  # the metrics' state gauges read it per scrape
    with metrics_listener(metrics_port, metrics_host, StateCollector(state), processes=processes):
        # uvloop and httptools: uvicorn's "auto" picks them up.
        uvicorn.run(
            "codeshelf.api.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=processes,
            # Our request line (codeshelf.request), not uvicorn's access log: it says more.
            log_config=logs.config(
                log_format(log_format_name), requests=access_log, file=settings.log_file
            ),
            access_log=False,
            server_header=False,  # no "server: uvicorn" banner
            # A server process that has not started within uvicorn's 5 s is killed and started
            # again: on a busy machine (importing the app takes seconds) that never ends.
            timeout_worker_healthcheck=WORKER_STARTUP_S,
            # SIGTERM: stop accepting, answer the requests in flight (up to this long), then exit.
            timeout_graceful_shutdown=settings.shutdown_grace_seconds,
            proxy_headers=proxy_headers,  # the real client's address for limits, logs, /ops/
            forwarded_allow_ips=forwarded_allow_ips,
            # Slow clients are cut (CODESHELF_CLIENT_HEADER/BODY_TIMEOUT_SECONDS).
            http="codeshelf.api.edge:DeadlineProtocol",
        )
    state.dispose()


def _sign_in(url: str, person: demo.DemoMember) -> dict[str, str]:
    return {
        "url": url, "email": person.email, "password": person.password,
        "totp_secret": person.totp_secret,
    }  # fmt: skip


@app.command("demo")
def demo_command(as_json: JsonOption = False) -> None:
    """Load demo data (idempotent); print the demo partner's keys and portal sign-in."""
    db = context.database(migrate_if_behind=True)
    vault = context.vault()
    with domain_errors(), db.session() as session:
        result = demo.load(session, vault, context.settings().require_secret())
    base = context.settings().public_url.rstrip("/")
    portal = _sign_in(base + "/account/login", result.member)
    console = _sign_in(base + "/ops/login", result.staff)
    data = {
        "partner_id": result.partner_id,
        "api_key": result.api_key,
        "sandbox_key": result.sandbox_key,
        "operator_key": result.operator_key,
        "products": result.products,
        "portal": portal,
        "console": console,
    }

    def render() -> None:
        say(f"demo partner: {result.partner_id}")
        say(f"API key:      {result.api_key}")
        say(f"sandbox key:  {result.sandbox_key}  (test funds, synthetic codes)")
        say(f"operator key: {result.operator_key}  (for /api/v1/admin)")
        say(f"products:     {', '.join(result.products)}")
        for name, where, person in (
            ("portal", portal, result.member), ("console", console, result.staff),
        ):  # fmt: skip
            say(f"{name + ':':13} {where['url']}")
            say(f"  email:      {where['email']}")
            say(f"  password:   {where['password']}")
            say(f"  2FA key:    {where['totp_secret']}  (add it to an authenticator app)")
            say(f"  code now:   {person.current_code()}  (changes every 30 s)")

    emit(data, as_json, render)


if __name__ == "__main__":
    app()
