"""The operator's day, a line per partner and currency with its own cross-checks: the running
balances the ledger recorded chain up, and the orders delivered that day cost what was paid.
The same report through the service, `codeshelf reconcile` and GET /api/v1/admin/reconciliation
(JSON and CSV)."""

from __future__ import annotations

import csv
import io
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, select, update

from codeshelf.kit.db import Database
from codeshelf.kit.vault import Vault
from codeshelf.orders.models import Order
from codeshelf.partners import service as partners
from codeshelf.reconciliation import service
from codeshelf.wallet.models import Account, LedgerTransaction, Posting
from tests.fixtures import factories
from tests.fixtures.claims import issue_operator_key
from tests.fixtures.http import order
from tests.fixtures.reconciliation import build_busy_day, buy, report, still, utc_today

ADMIN = "/api/v1/admin/reconciliation"


def operator_day(db: Database) -> service.OperatorDay:
    with db.read_session() as session:
        return service.operator_day(session, utc_today())


def flagged(day: service.OperatorDay) -> dict[tuple[str, str], list[str]]:
    return {(line.partner_id, line.currency): line.problems for line in day.lines if line.mismatch}


def admin(client: httpx.Client, db: Database, **params: str) -> httpx.Response:
    key = issue_operator_key(db, "olga")
    return client.get(ADMIN, params={"day": utc_today().isoformat(), **params}, headers=key.headers)


def test_a_busy_day_has_a_clean_line_per_partner_and_currency(
    client: httpx.Client,
    db: Database,
    vault: Vault,
    shop: factories.Shop,
    database_url: str,
    tmp_path: Path,
) -> None:
    today = utc_today()
    busy = build_busy_day(client, db, vault, shop, database_url, tmp_path)
    day = operator_day(db)
    assert day.ok and day.mismatches == [] and flagged(day) == {}
    assert [(line.partner_id, line.currency) for line in day.lines] == [
        (shop.a.id, "EUR"), (shop.a.id, "USD"), (shop.b.id, "USD"),
    ]  # fmt: skip
    a_usd = day.lines[1]
    assert {name: m.minor for name, m in a_usd.figures.money().items()} == busy.usd
    assert a_usd.delivered.minor == 9300 + 2790 + 4650  # A-1, A-BO-1 and the claimed order
    assert day.lines[0].delivered.minor == 4750 and day.lines[2].delivered.minor == 4650

    body = admin(client, db).json()
    assert body["ok"] is True and body["date"] == today.isoformat()
    # The figures are exactly the partner API's.
    for partner in (shop.a, shop.b):
        own = [line["figures"] for line in body["lines"] if line["partner_id"] == partner.id]
        assert own == report(client, partner.headers, today)["currencies"]

    table = list(csv.DictReader(io.StringIO(admin(client, db, format="csv").text)))
    assert [(row["partner_id"], row["currency"], row["mismatch"]) for row in table] == [
        (shop.a.id, "EUR", "no"), (shop.a.id, "USD", "no"), (shop.b.id, "USD", "no"),
    ]  # fmt: skip
    assert table[1]["closing"] == f"{busy.usd['closing'] / 100:.2f}"
    assert table[1]["order_debits"].startswith("-")  # a system amount keeps its minus
    still(today)


def test_a_running_balance_that_does_not_chain_flags_its_line_only(
    client: httpx.Client, db: Database, shop: factories.Shop, database_url: str
) -> None:
    bought = buy(client, shop.a.headers, "psn-us-50", 1, "A-1")
    buy(client, shop.b.headers, "psn-us-50", 1, "B-1")
    with db.session() as session:  # the order's wallet posting says the wallet kept 1 cent more
        order_id = session.scalar(select(Order.id).where(Order.public_id == bought))
        txn = session.scalars(
            select(LedgerTransaction).where(LedgerTransaction.order_id == order_id)
        ).one()
        session.execute(
            update(Posting)
            .where(Posting.transaction_id == txn.id, Posting.balance_after_minor.is_not(None))
            .values(balance_after_minor=Posting.balance_after_minor + 1)
        )
    day = operator_day(db)
    assert not day.ok and day.mismatches == []  # the day's cross-checks across everyone see nothing
    assert flagged(day) == {
        (shop.a.id, "USD"): [
            f"wallet balance after {txn.public_id} is recorded as 953.51 USD, not 953.50 USD"
        ]
    }
    result = factories.run_cli(
        database_url, "reconcile", "--date", utc_today().isoformat(), "--json"
    )
    assert result.exit_code == 1, result.stderr
    data = json.loads(result.stdout)
    assert data["ok"] is False and data["mismatches"] == []
    assert [p["problems"] for p in data["partners"]] == [
        [f"USD: wallet balance after {txn.public_id} is recorded as 953.51 USD, not 953.50 USD"],
        [],
    ]
    human = factories.run_cli(database_url, "reconcile", "--date", utc_today().isoformat())
    assert human.exit_code == 1 and f"mismatch: {shop.a.id} USD: wallet balance" in human.stderr
    assert "MISMATCH" in human.stdout
    lines = admin(client, db).json()["lines"]
    assert [(line["partner_id"], line["mismatch"]) for line in lines] == [
        (shop.a.id, True), (shop.b.id, False),
    ]  # fmt: skip
    still(utc_today())


def test_a_transaction_removed_whole_still_breaks_the_chain(
    client: httpx.Client, db: Database, shop: factories.Shop
) -> None:
    """A deposit's two postings deleted: the books still balance, and the day's cross-checks
    across everyone see nothing, but the next wallet posting's running balance does not follow."""
    factories.deposit(db, shop.a.id, "10.00")
    buy(client, shop.a.headers, "psn-us-50", 1, "A-1")
    with db.session() as session:
        partner = partners.get_partner(session, shop.a.id)
        wallet_id = session.scalar(
            select(Account.id).where(Account.partner_id == partner.id, Account.kind == "wallet")
        )
        deposits = session.scalars(
            select(LedgerTransaction.id)
            .where(LedgerTransaction.kind == "deposit")
            .join(Posting, Posting.transaction_id == LedgerTransaction.id)
            .where(Posting.account_id == wallet_id)
            .order_by(LedgerTransaction.id)
        ).all()
        session.execute(delete(Posting).where(Posting.transaction_id == deposits[-1]))
        session.execute(
            update(Account)
            .where(Account.id == wallet_id)
            .values(balance_minor=Account.balance_minor - 1000)
        )
    day = operator_day(db)
    assert day.mismatches == []
    [(where, problems)] = flagged(day).items()
    assert (
        where == (shop.a.id, "USD") and "is recorded as 963.50 USD, not 953.50 USD" in problems[0]
    )


def test_delivered_orders_not_paid_exactly_flag_their_line(
    client: httpx.Client, db: Database, shop: factories.Shop
) -> None:
    bought = buy(client, shop.a.headers, "psn-us-50", 2, "A-1")
    with db.session() as session:
        session.execute(update(Order).where(Order.public_id == bought).values(total_minor=9301))
    day = operator_day(db)
    assert flagged(day) == {
        (shop.a.id, "USD"): ["orders delivered for 93.01 USD but 93.00 USD was paid for them"]
    }
    assert day.mismatches == [f"order {bought} was delivered for 9301 but 9300 was paid"]
    table = list(csv.reader(io.StringIO(admin(client, db, format="csv").text)))
    assert table[-1][-2:] == ["yes", day.mismatches[0]]  # the cross-check row after the lines


def test_a_partner_name_cannot_inject_a_formula_into_the_csv(
    client: httpx.Client, db: Database, shop: factories.Shop
) -> None:
    evil = factories.add_partner(db, '=HYPERLINK("http://x")')
    factories.deposit(db, evil.id, "5.00")
    response = admin(client, db, format="csv")
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    names = [row["name"] for row in csv.DictReader(io.StringIO(response.text))]
    assert names[-1] == '\'=HYPERLINK("http://x")'


def test_the_admin_route_is_for_operator_keys_and_wants_a_day(
    client: httpx.Client, db: Database, shop: factories.Shop
) -> None:
    assert (
        client.get(ADMIN, params={"day": "2026-01-01"}, headers=shop.a.headers).status_code == 404
    )
    key = issue_operator_key(db, "olga")
    for bad in ("2026-13-01", "yesterday", ""):
        assert client.get(ADMIN, params={"day": bad}, headers=key.headers).status_code == 422
    empty = client.get(ADMIN, params={"day": "2001-01-01"}, headers=key.headers).json()
    assert empty == {
        "date": "2001-01-01",
        "timezone": "UTC",
        "ok": True,
        "lines": [],
        "mismatches": [],
    }


@pytest.mark.live
def test_racing_orders_keep_the_running_balance_chain(
    client: httpx.Client, db: Database, shop: factories.Shop
) -> None:
    """Concurrent orders and deposits of one partner: its wallet row lock orders them, and each
    posting's running balance follows the one before it."""
    start = threading.Barrier(8)

    def move(n: int) -> Any:
        start.wait()
        if n % 2:
            factories.deposit(db, shop.a.id, "1.00")
            return None
        return order(client, shop.a.headers).status_code

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(move, range(8)))
    assert outcomes.count(201) == 4
    day = operator_day(db)
    assert day.ok, (flagged(day), day.mismatches)
