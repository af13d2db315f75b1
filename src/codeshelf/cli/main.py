"""The ``codeshelf`` command line for the operator."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

from codeshelf import invariants
from codeshelf.audit import service as audit
from codeshelf.catalog import service as catalog
from codeshelf.catalog.service import face_value
from codeshelf.claims import service as claims
from codeshelf.cli import context, demo
from codeshelf.cli.claims import claims_app, operator_app
from codeshelf.cli.orders import orders_app
from codeshelf.cli.output import domain_errors, emit, err, fail, out, say, table
from codeshelf.cli.reconcile import reconcile
from codeshelf.cli.webhooks import webhooks_app, worker
from codeshelf.kit import migrate
from codeshelf.kit.clock import utcnow
from codeshelf.kit.errors import DomainError
from codeshelf.kit.money import InvalidMoneyError, Money
from codeshelf.kit.settings import MissingSecretKeyError
from codeshelf.orders.service import fulfilment
from codeshelf.partners import service as partners
from codeshelf.partners.models import KeyMode
from codeshelf.stock import service as stock
from codeshelf.stock.models import CodeState
from codeshelf.wallet import service as wallet

# Rich tracebacks would print local variables, and locals can hold codes or keys.
app = typer.Typer(
    no_args_is_help=True,
    help="Operate a codeshelf wholesale platform.",
    pretty_exceptions_enable=False,
)
product_app = typer.Typer(no_args_is_help=True, help="The catalog of products.")
partner_app = typer.Typer(no_args_is_help=True, help="Partner accounts.")
key_app = typer.Typer(no_args_is_help=True, help="A partner's API keys.")
price_app = typer.Typer(no_args_is_help=True, help="Partner-specific prices.")
wallet_app = typer.Typer(no_args_is_help=True, help="Partner wallets.")
stock_app = typer.Typer(no_args_is_help=True, help="Code stock.")
ledger_app = typer.Typer(no_args_is_help=True, help="The ledger and its invariants.")
app.add_typer(product_app, name="product")
app.add_typer(partner_app, name="partner")
partner_app.add_typer(key_app, name="key")
app.add_typer(price_app, name="price")
app.add_typer(wallet_app, name="wallet")
app.add_typer(stock_app, name="stock")
app.add_typer(ledger_app, name="ledger")
app.add_typer(claims_app, name="claims")
app.add_typer(orders_app, name="orders")
app.add_typer(operator_app, name="operator")
app.add_typer(webhooks_app, name="webhooks")
app.command("worker")(worker)
app.command("reconcile")(reconcile)

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]


@app.command("migrate")
def migrate_command() -> None:
    """Upgrade the database schema to the latest version."""
    migrate.upgrade(context.settings().database_url)
    say("database schema is current", console=err)


@app.command()
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: Annotated[int, typer.Option(min=1)] = 1,
) -> None:
    """Serve the HTTP API (migrating the schema first when it is behind)."""
    settings = context.settings()
    try:
        settings.require_secret()
    except MissingSecretKeyError as exc:
        fail(str(exc))
    migrate.ensure_current(settings.database_url)
    uvicorn.run("codeshelf.api.app:create_app", factory=True, host=host, port=port, workers=workers)


@app.command("demo")
def demo_command(as_json: JsonOption = False) -> None:
    """Load demo data (idempotent) and print the demo partner's API key."""
    db = context.database(migrate_if_behind=True)
    vault = context.vault()
    with domain_errors(), db.session() as session:
        result = demo.load(session, vault, context.settings().require_secret())
    data = {
        "partner_id": result.partner_id,
        "api_key": result.api_key,
        "sandbox_key": result.sandbox_key,
        "operator_key": result.operator_key,
        "products": result.products,
    }

    def render() -> None:
        say(f"demo partner: {result.partner_id}")
        say(f"API key:      {result.api_key}")
        say(f"sandbox key:  {result.sandbox_key}  (test funds, synthetic codes)")
        say(f"operator key: {result.operator_key}  (for /api/v1/admin)")
        say(f"products:     {', '.join(result.products)}")

    emit(data, as_json, render)


def _product_json(product: Any) -> dict[str, Any]:
    return {
        "sku": product.sku,
        "platform": product.platform,
        "region": product.region,
        "face_value": face_value(product).as_json(),
        "price": Money(product.price_minor, product.price_currency).as_json(),
    }


@product_app.command("add")
def product_add(
    sku: str,
    platform: Annotated[str, typer.Option()] = "psn",
    region: Annotated[str, typer.Option()] = ...,  # type: ignore[assignment]
    face_value_: Annotated[str, typer.Option("--face-value")] = ...,  # type: ignore[assignment]
    currency: Annotated[str, typer.Option(help="Currency of the face value.")] = ...,  # type: ignore[assignment]
    price: Annotated[str, typer.Option(help="Default wholesale price.")] = ...,  # type: ignore[assignment]
    price_currency: Annotated[
        str | None, typer.Option(help="Currency of the price (default: --currency).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Add a product, e.g. psn-us-50 --region US --face-value 50 --currency USD --price 46.50."""
    with domain_errors(), context.database().session() as session:
        product = catalog.add_product(
            session,
            sku=sku,
            platform=platform,
            region=region,
            face_value=face_value_,
            currency=currency,
            price=price,
            price_currency=price_currency,
        )
        data = _product_json(product)
    emit(data, as_json, lambda: say(f"added {sku}"))


@product_app.command("list")
def product_list(as_json: JsonOption = False) -> None:
    """Every product with its default price."""
    with context.database().read_session() as session:
        data = [_product_json(product) for product in catalog.list_products(session)]
    rows = [
        (p["sku"], p["platform"], p["region"], _fmt(p["face_value"]), _fmt(p["price"]))
        for p in data
    ]
    emit(
        data,
        as_json,
        lambda: table("products", ["sku", "platform", "region", "face value", "price"], rows),
    )


def _fmt(money: dict[str, str]) -> str:
    return f"{money['amount']} {money['currency']}"


@partner_app.command("create")
def partner_create(
    name: str,
    rate_limit: Annotated[
        int | None, typer.Option("--rate-limit", min=1, help="Requests per minute per key.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a partner and its first API key (shown once: store it now)."""
    with domain_errors(), context.database().session() as session:
        issued = partners.create_partner(session, name, rate_limit)
    data = {
        "partner_id": issued.partner.public_id,
        "name": issued.partner.name,
        "key_id": issued.api_key.public_id,
        "api_key": issued.secret,
    }

    def render() -> None:
        say(f"partner_id: {data['partner_id']}")
        say(f"key_id:     {data['key_id']}")
        say(f"api_key:    {data['api_key']}  (shown once)")

    emit(data, as_json, render)


@key_app.command("create")
def key_create(
    partner_id: str,
    sandbox: Annotated[
        bool,
        typer.Option("--sandbox", help="A cs_test_ key for the partner's sandbox (no live data)."),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Issue another API key (several may be active, for rotation), or a sandbox key."""
    mode = KeyMode.TEST if sandbox else KeyMode.LIVE
    with domain_errors(), context.database().session() as session:
        issued = partners.create_key(session, partner_id, mode)
    data = {
        "partner_id": partner_id,
        "key_id": issued.api_key.public_id,
        "mode": mode,
        "api_key": issued.secret,
    }
    emit(
        data,
        as_json,
        lambda: say(f"{data['key_id']}: {data['api_key']} (shown once)"),
    )


@key_app.command("revoke")
def key_revoke(partner_id: str, key_id: str, as_json: JsonOption = False) -> None:
    """Revoke an API key; requests with it get 401 from now on."""
    with domain_errors(), context.database().session() as session:
        api_key = partners.revoke_key(session, partner_id, key_id)
    data = {"partner_id": partner_id, "key_id": key_id, "revoked_at": api_key.revoked_at}
    emit(data, as_json, lambda: say(f"revoked {key_id}"))


@key_app.command("list")
def key_list(partner_id: str, as_json: JsonOption = False) -> None:
    """A partner's keys (their prefixes, never the keys)."""
    with domain_errors(), context.database().read_session() as session:
        keys = partners.list_keys(session, partner_id)
    data = [
        {
            "key_id": k.public_id,
            "mode": k.mode,
            "prefix": k.prefix,
            "created_at": k.created_at,
            "revoked_at": k.revoked_at,
        }
        for k in keys
    ]
    rows = [(k.public_id, k.mode, f"{k.prefix}…", k.created_at, k.revoked_at or "") for k in keys]
    headers = ["key_id", "mode", "prefix", "created", "revoked"]
    emit(data, as_json, lambda: table("API keys", headers, rows))


@partner_app.command("limits")
def partner_limits(
    partner_id: str,
    quantity_over: Annotated[
        int | None, typer.Option("--quantity-over", min=1, help="Review orders of more codes.")
    ] = None,
    amount_over: Annotated[
        str | None,
        typer.Option("--amount-over", help='Review orders costing more, e.g. "5000 USD".'),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Set the partner's manual-review limits (without options: back to the defaults)."""
    limit = None
    if amount_over is not None:
        amount, _, currency = amount_over.strip().partition(" ")
        try:
            limit = Money.parse(amount, currency.strip())
        except InvalidMoneyError as exc:
            fail(f'--amount-over: {exc} (write it as "5000 USD")')
    with domain_errors(), context.database().session() as session:
        partner = partners.get_partner(session, partner_id)
        partners.set_review_limits(session, partner, quantity_over, limit)
    data = {
        "partner_id": partner_id,
        "quantity_over": quantity_over,
        "amount_over": None if limit is None else limit.as_json(),
    }
    limits = [f"{quantity_over} codes" if quantity_over else "", str(limit) if limit else ""]
    described = " or ".join(part for part in limits if part) or "the operator-wide defaults"
    emit(data, as_json, lambda: say(f"{partner_id}: orders above {described} go to review"))


@price_app.command("set")
def price_set(partner_id: str, sku: str, price: str, as_json: JsonOption = False) -> None:
    """Set a partner-specific price overriding the product's default."""
    with domain_errors(), context.database().session() as session:
        partner = partners.get_partner(session, partner_id)
        money = catalog.set_partner_price(session, partner, sku, price)
    data = {"partner_id": partner_id, "sku": sku, "price": money.as_json()}
    emit(data, as_json, lambda: say(f"{partner_id} pays {money} for {sku}"))


@wallet_app.command("deposit")
def wallet_deposit(
    partner_id: str,
    amount: str,
    currency: Annotated[str, typer.Option()] = ...,  # type: ignore[assignment]
    reference: Annotated[str, typer.Option(help="Unique; a repeat credits nothing.")] = ...,  # type: ignore[assignment]
    as_json: JsonOption = False,
) -> None:
    """Credit a partner's wallet (idempotent on --reference)."""
    try:
        money = Money.parse(amount, currency)
    except InvalidMoneyError as exc:
        fail(str(exc))
    with domain_errors(), context.database().session() as session:
        partner = partners.get_partner(session, partner_id)
        result = wallet.deposit(session, partner, money, reference)
    data = {
        "partner_id": partner_id,
        "transaction_id": result.transaction.public_id,
        "reference": reference,
        "amount": money.as_json(),
        "created": result.created,
        "balance": result.balance.as_json(),
    }
    verb = "deposited" if result.created else "already deposited (nothing changed):"
    emit(data, as_json, lambda: say(f"{verb} {money}; balance {result.balance}"))


@stock_app.command("import")
def stock_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    sku: Annotated[str, typer.Option()] = ...,  # type: ignore[assignment]
    batch: Annotated[str, typer.Option(help="The supplier batch reference (unique).")] = ...,  # type: ignore[assignment]
    supplier: str | None = None,
    unit_cost: Annotated[str | None, typer.Option(help="What one code cost, e.g. 45.00.")] = None,
    strict: Annotated[bool, typer.Option(help="Refuse the whole file if any line is bad.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Import codes from a CSV (column `code`, or the first) or a one-code-per-line file."""
    db = context.database()
    vault = context.vault()
    progress = Progress(
        *Progress.get_default_columns()[:-1],
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=not err.is_terminal,
        transient=True,
    )
    task = progress.add_task("importing", total=file.stat().st_size)
    try:
        with progress, db.session() as session:
            report = stock.import_file(
                session,
                vault,
                file,
                sku=sku,
                batch_reference=batch,
                supplier=supplier,
                unit_cost=unit_cost,
                strict=strict,
                on_progress=lambda done: progress.update(task, completed=done),
            )
    except stock.StrictImportRefusedError as exc:
        _print_report(exc.report, as_json, file=sys.stderr)
        fail(exc.detail)
    except KeyboardInterrupt:
        fail("interrupted: nothing was imported", 130)
    except DomainError as exc:
        fail(exc.detail)
    _print_report(report, as_json)
    _serve_waiting(db)


def _serve_waiting(db: Any) -> None:
    """New stock may be what approved claims and backorders wait for: serve them now, claims
    first (their codes are owed), then backorders first come, first served."""
    with db.session() as session:
        resolved = claims.fulfil_waiting(session, claims.Actor(audit.OPERATOR_CLI))
    if resolved:
        say(f"replacement codes sent for claim(s) {', '.join(resolved)}", console=err)
    with db.session() as session:
        expired, filled = fulfilment.tick(session, utcnow())  # a late backorder is not filled
    if expired:
        say(f"backorders expired: {', '.join(expired)}", console=err)
    if filled:
        say(f"backorders delivered: {', '.join(filled)}", console=err)


def _print_report(report: stock.ImportReport, as_json: bool, file: Any = None) -> None:
    if as_json:
        typer.echo(json.dumps(report.as_json(), indent=2), file=file)
        return
    console = err if file is sys.stderr else out
    say(
        f"batch {report.batch} ({report.sku}): {report.imported} imported of "
        f"{report.lines_read} lines; {report.duplicates_in_file.count} duplicate(s) within the "
        f"file, {report.duplicates_in_stock.count} already in stock, "
        f"{report.malformed.count} malformed",
        console=console,
    )
    for label, issues in (
        ("duplicate in file", report.duplicates_in_file),
        ("already in stock", report.duplicates_in_stock),
        ("malformed", report.malformed),
    ):
        for issue in issues.examples:
            reason = f" ({issue.reason})" if issue.reason else ""
            say(f"  line {issue.line}: {label}: {issue.code}{reason}", console=console)
        if issues.count > len(issues.examples):
            say(f"  … and {issues.count - len(issues.examples)} more {label}", console=console)


@stock_app.command("summary")
def stock_summary(as_json: JsonOption = False) -> None:
    """Codes per product and state."""
    with context.database().read_session() as session:
        data = stock.summary(session)
    columns = ["sku", *tuple(CodeState), "total"]
    rows = [[row[column] for column in columns] for row in data]
    emit(data, as_json, lambda: table("stock", columns, rows))


@stock_app.command("batches")
def stock_batches(as_json: JsonOption = False) -> None:
    """Quality per batch and supplier: delivered, claimed, confirmed defective."""
    with context.database().read_session() as session:
        data = [
            {**vars(row), "defect_rate": round(row.defect_rate, 4)}
            for row in claims.batch_quality(session)
        ]
    columns = [
        "reference",
        "sku",
        "supplier",
        "imported",
        "available",
        "delivered",
        "claimed",
        "defective",
        "quarantined",
    ]
    rows = [[row[c] if row[c] is not None else "" for c in columns] for row in data]
    emit(data, as_json, lambda: table("batches", columns, rows))


@stock_app.command("quarantine")
def stock_quarantine(
    batch: Annotated[str, typer.Option(help="The batch reference.")] = ...,  # type: ignore[assignment]
    as_json: JsonOption = False,
) -> None:
    """Pull a bad batch's remaining available codes out of sale (kept as quarantined)."""
    with domain_errors(), context.database().session() as session:
        count = stock.quarantine_batch(session, batch)
    data = {"batch": batch, "quarantined": count}
    emit(data, as_json, lambda: say(f"quarantined {count} available code(s) of batch {batch}"))


@ledger_app.command("check")
def ledger_check(as_json: JsonOption = False) -> None:
    """Verify every invariant of money and stock; exit 1 on any violation."""
    with context.database().read_session() as session:
        problems = invariants.check_all(session)
    data = {"ok": not problems, "violations": problems}

    def render() -> None:
        if not problems:
            say("ledger check: every invariant holds")
        for problem in problems:
            say(problem, console=err, label="violation: ", style="red")

    emit(data, as_json, render)
    if problems:
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
