"""GET /api/v1/reconciliation: a partner's day per currency, checked against sums the test
computes itself from what it did, across day boundaries, partners and the sandbox; the CSV."""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from codeshelf.kit.db import Database
from codeshelf.kit.money import Money
from codeshelf.kit.vault import Vault
from codeshelf.orders.models import Order
from codeshelf.orders.service import fulfilment
from codeshelf.partners import service as partners
from codeshelf.stock.models import Batch, Code
from codeshelf.wallet.models import LedgerTransaction, Posting
from tests import factories
from tests.claims.support import approve, claim_body, file_claim, operator_headers, reveal
from tests.claims.support import place as place_and_reveal
from tests.helpers import assert_problem, order

MOVEMENTS = ("deposits", "order_debits", "holds", "releases", "refunds")
FIGURES = ("opening", *MOVEMENTS, "closing", "held_opening", "captured", "held_closing")
CSV_HEADER = ["record", "currency", "amount", "order_id", "client_order_id", "status", "created_at"]

CHEAP = "psn-us-10"  # 9.30 USD, no stock at first: backorders wait for it
OTHER = "psn-us-20"  # 18.60 USD, never stocked: its backorder expires
EURO = "psn-de-25"  # 23.75 EUR, a product priced in another currency

# One order line as the report lists it: (order id, client_order_id, status, amount, currency).
Line = tuple[str, str | None, str, str, str]


# ---------------------------------------------------------------------------------------------
# Helpers (also used by test_operator_reconcile.py)


def utc_today() -> date:
    return datetime.now(UTC).date()


def noon(day: date) -> datetime:
    return datetime.combine(day, time(12), tzinfo=UTC)


def still(day: date) -> None:
    """The assertions about "today" need the whole test to run within one UTC day."""
    if utc_today() != day:
        pytest.skip("the test ran across midnight UTC")


def fetch(
    client: httpx.Client, headers: dict[str, str], day: date | str, **params: str
) -> httpx.Response:
    query = {"date": day if isinstance(day, str) else day.isoformat(), **params}
    return client.get("/api/v1/reconciliation", params=query, headers=headers)


def report(client: httpx.Client, headers: dict[str, str], day: date) -> dict[str, Any]:
    response = fetch(client, headers, day)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert body["date"] == day.isoformat() and body["timezone"] == "UTC"
    assert_adds_up(body)
    return body


def minor(money: dict[str, str]) -> int:
    return Money.parse(money["amount"], money["currency"]).minor


def figures(body: dict[str, Any]) -> dict[str, dict[str, int]]:
    """currency -> figure -> minor units, as the report states them."""
    result: dict[str, dict[str, int]] = {}
    for line in body["currencies"]:
        assert {key for key in line if key != "currency"} == set(FIGURES)
        assert all(line[name]["currency"] == line["currency"] for name in FIGURES)
        result[line["currency"]] = {name: minor(line[name]) for name in FIGURES}
    return result


def expected(**given: int) -> dict[str, int]:
    """All figures, zero unless given."""
    assert set(given) <= set(FIGURES)
    return {name: given.get(name, 0) for name in FIGURES}


def assert_adds_up(body: dict[str, Any]) -> None:
    """Closing is the opening plus the movements; the held money moves the other way."""
    for f in figures(body).values():
        assert f["closing"] == f["opening"] + sum(f[name] for name in MOVEMENTS), f
        held_in = -f["holds"] - f["releases"] + f["captured"]
        assert f["held_closing"] == f["held_opening"] + held_in, f


def lines(body: dict[str, Any]) -> list[Line]:
    return [
        (
            row["order_id"],
            row["client_order_id"],
            row["status"],
            row["amount"]["amount"],
            row["amount"]["currency"],
        )
        for row in body["orders"]
    ]


def wallet(client: httpx.Client, headers: dict[str, str]) -> tuple[dict[str, int], dict[str, int]]:
    """GET /balance: (available, held), currency -> minor units."""
    response = client.get("/api/v1/balance", headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    return (
        {row["currency"]: minor(row) for row in body["data"]},
        {row["currency"]: minor(row) for row in body["held"]},
    )


def assert_closing_is_balance(
    client: httpx.Client, headers: dict[str, str], body: dict[str, Any]
) -> None:
    """Today's closing figures are what GET /balance says now."""
    available, held = wallet(client, headers)
    stated = figures(body)
    assert {cur: f["closing"] for cur, f in stated.items()} == {
        cur: available.get(cur, 0) for cur in stated
    }
    assert {cur: f["held_closing"] for cur, f in stated.items()} == {
        cur: held.get(cur, 0) for cur in stated
    }
    # A currency the report leaves out never held any money.
    assert all(available[cur] == 0 for cur in set(available) - set(stated))


def buy(
    client: httpx.Client,
    headers: dict[str, str],
    sku: str,
    quantity: int,
    client_order_id: str | None,
    *,
    backorder: bool = False,
    status: str = "delivered",
) -> str:
    body: dict[str, Any] = {"product_id": sku, "quantity": quantity}
    if client_order_id is not None:
        body["client_order_id"] = client_order_id
    if backorder:
        body["allow_backorder"] = True
    response = order(client, headers, body)
    assert response.status_code == 201, response.text
    assert response.json()["status"] == status, response.json()
    order_id: str = response.json()["id"]
    return order_id


def import_codes(
    database_url: str, directory: Path, sku: str, count: int, extra: tuple[str, ...] = ()
) -> str:
    """`codeshelf stock import FILE --sku SKU --batch REF` of ``count`` new codes (and the
    ``extra`` lines after them); returns the batch reference. The import then serves waiting
    backorders."""
    reference = f"SUP-{uuid.uuid4().hex[:8]}"
    path = directory / f"{reference}.txt"
    codes = [factories.random_code() for _ in range(count)]
    path.write_text("".join(f"{line}\n" for line in (*codes, *extra)))
    result = factories.run_cli(
        database_url, "stock", "import", str(path), "--sku", sku, "--batch", reference
    )
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return reference


def status_of(client: httpx.Client, headers: dict[str, str], order_id: str) -> str:
    response = client.get(f"/api/v1/orders/{order_id}", headers=headers)
    assert response.status_code == 200, response.text
    status: str = response.json()["status"]
    return status


def sandbox_headers(db: Database, partner_id: str) -> dict[str, str]:
    with db.session() as session:
        issued = partners.create_key(session, partner_id, mode="test")
    assert issued.secret.startswith("cs_test_")
    return {"Authorization": f"Bearer {issued.secret}"}


def backdate_everything(db: Database, moment: datetime) -> None:
    """Move everything that has happened so far (money, orders, deliveries, imports) to
    ``moment``, as if it had all happened then."""
    with db.session() as session:
        session.execute(update(LedgerTransaction).values(created_at=moment))
        session.execute(update(Posting).values(created_at=moment))
        session.execute(update(Order).values(created_at=moment, updated_at=moment))
        session.execute(
            update(Order).where(Order.delivered_at.is_not(None)).values(delivered_at=moment)
        )
        session.execute(
            update(Code).where(Code.delivered_at.is_not(None)).values(delivered_at=moment)
        )
        session.execute(update(Batch).values(imported_at=moment))


def move_money(session: Session, transaction_ids: list[Any], moment: datetime) -> None:
    """Move ledger transactions, and their postings, to ``moment``."""
    session.execute(
        update(LedgerTransaction)
        .where(LedgerTransaction.id.in_(transaction_ids))
        .values(created_at=moment)
    )
    session.execute(
        update(Posting).where(Posting.transaction_id.in_(transaction_ids)).values(created_at=moment)
    )


def move_order(db: Database, public_id: str, moment: datetime) -> None:
    """Move a delivered order, its codes' delivery and its money to ``moment``."""
    with db.session() as session:
        row = session.scalars(select(Order).where(Order.public_id == public_id)).one()
        row.created_at = row.updated_at = row.delivered_at = moment
        items = [item.id for item in row.items]
        session.execute(
            update(Code).where(Code.order_item_id.in_(items)).values(delivered_at=moment)
        )
        txns = session.scalars(
            select(LedgerTransaction.id).where(LedgerTransaction.order_id == row.id)
        )
        move_money(session, list(txns), moment)


@dataclass
class BusyDay:
    """What build_busy_day did for partner A, and what its report must therefore say."""

    usd: dict[str, int]
    eur: dict[str, int]
    a_orders: list[Line]
    b_orders: list[Line]
    imported_batch: str


def build_busy_day(
    client: httpx.Client,
    db: Database,
    vault: Vault,
    shop: factories.Shop,
    database_url: str,
    directory: Path,
) -> BusyDay:
    """Partner A (1000.00 USD from the shop) in one day: two more deposits (one in EUR), orders
    delivered at once in USD and EUR, a backorder delivered by a stock import, a backorder that
    expires, and a claim refunded. Partner B buys too. All sums below are the test's own."""
    a, b = shop.a.headers, shop.b.headers
    factories.add_product(db, CHEAP, face="10", price="9.30")
    factories.add_product(db, OTHER, face="20", price="18.60")
    factories.add_product(db, EURO, region="DE", face="25", currency="EUR", price="23.75")
    factories.load_codes(db, vault, EURO, 3)
    factories.deposit(db, shop.a.id, "500.00", "USD")
    factories.deposit(db, shop.a.id, "200.00", "EUR")

    bought = buy(client, a, "psn-us-50", 2, "A-1")  # 2 x 46.50 from the wallet
    euros = buy(client, a, EURO, 2, "A-EUR")  # 2 x 23.75 EUR from the EUR wallet
    waits = buy(client, a, CHEAP, 3, "A-BO-1", backorder=True, status="pending")  # 27.90 held
    lapses = buy(client, a, OTHER, 1, "A-BO-2", backorder=True, status="pending")  # 18.60 held
    b_order = buy(client, b, "psn-us-50", 1, "B-1")

    # Half-way through the day: the two backorders' money is held, not spent.
    mid = report(client, a, utc_today())
    assert figures(mid)["USD"] == expected(
        deposits=150000,
        order_debits=-9300,
        holds=-(2790 + 1860),
        closing=150000 - 9300 - 2790 - 1860,
        held_closing=2790 + 1860,
    )
    assert_closing_is_balance(client, a, mid)

    batch = import_codes(database_url, directory, CHEAP, 3)  # delivers A-BO-1 from its hold
    assert status_of(client, a, waits) == "delivered"
    with db.session() as session:
        expired = fulfilment.expire_backorders(session, datetime.now(UTC) + timedelta(hours=73))
    assert expired == [lapses]

    claimed, [code] = place_and_reveal(client, a)  # 46.50, then refunded by an approved claim
    claim_id = file_claim(client, a, claim_body(claimed, code, remedy="refund"))
    approve(client, operator_headers(db), claim_id)

    spent = 9300 + 2790 + 4650  # what A's delivered USD orders cost
    return BusyDay(
        usd=expected(
            deposits=100000 + 50000,
            order_debits=-(9300 + 4650),  # A-1 and the claimed order, straight from the wallet
            holds=-(2790 + 1860),
            releases=1860,
            refunds=4650,
            closing=150000 - spent + 4650,
            captured=-2790,
        ),
        eur=expected(deposits=20000, order_debits=-4750, closing=20000 - 4750),
        a_orders=[
            (bought, "A-1", "delivered", "93.00", "USD"),
            (euros, "A-EUR", "delivered", "47.50", "EUR"),
            (waits, "A-BO-1", "delivered", "27.90", "USD"),
            (lapses, "A-BO-2", "failed", "18.60", "USD"),
            (claimed, None, "delivered", "46.50", "USD"),
        ],
        b_orders=[(b_order, "B-1", "delivered", "46.50", "USD")],
        imported_batch=batch,
    )


# ---------------------------------------------------------------------------------------------
# The figures


def test_a_busy_day_matches_independently_computed_sums(
    client: httpx.Client,
    db: Database,
    vault: Vault,
    shop: factories.Shop,
    database_url: str,
    tmp_path: Path,
) -> None:
    today = utc_today()
    day = build_busy_day(client, db, vault, shop, database_url, tmp_path)
    body = report(client, shop.a.headers, today)
    assert [line["currency"] for line in body["currencies"]] == ["EUR", "USD"]
    assert figures(body) == {"EUR": day.eur, "USD": day.usd}
    # Each order at the price paid, whatever happened to it since (failed, refunded).
    assert lines(body) == day.a_orders
    assert_closing_is_balance(client, shop.a.headers, body)

    # B's report shows B's money and order only.
    other = report(client, shop.b.headers, today)
    assert figures(other) == {
        "USD": expected(deposits=100000, order_debits=-4650, closing=100000 - 4650)
    }
    assert lines(other) == day.b_orders

    # The CSV says the same as the JSON.
    response = fetch(client, shop.a.headers, today, format="csv")
    assert response.status_code == 200, response.text
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == CSV_HEADER
    stated = {
        (record, currency): Money.parse(amount, currency).minor
        for record, currency, amount, *rest in rows[1:]
        if record != "order"
    }
    assert stated == {
        (name, currency): value
        for currency, values in (("EUR", day.eur), ("USD", day.usd))
        for name, value in values.items()
    }
    assert [
        (order_id, client_id or None, status, amount, currency)
        for record, currency, amount, order_id, client_id, status, _ in rows[1:]
        if record == "order"
    ] == day.a_orders
    still(today)


def test_days_join_up_and_orders_are_listed_on_the_days_their_money_moved(
    client: httpx.Client,
    db: Database,
    shop: factories.Shop,
    database_url: str,
    tmp_path: Path,
) -> None:
    today = utc_today()
    yesterday, before = today - timedelta(days=1), today - timedelta(days=2)
    a, b = shop.a.headers, shop.b.headers
    factories.add_product(db, CHEAP, face="10", price="9.30")
    old = buy(client, a, "psn-us-50", 1, "X")  # 46.50, refunded today
    quiet_old = buy(client, a, "psn-us-50", 1, "W")  # 46.50, nothing more happens to it
    waiting = buy(client, a, CHEAP, 2, "Y", backorder=True, status="pending")  # 18.60 held
    b_old = buy(client, b, "psn-us-50", 1, "B-old")
    backdate_everything(db, noon(yesterday))

    import_codes(database_url, tmp_path, CHEAP, 2)  # today: Y is paid from yesterday's hold
    assert status_of(client, a, waiting) == "delivered"
    new = buy(client, a, "psn-us-50", 2, "Z")  # 93.00
    factories.deposit(db, shop.a.id, "50.00")
    [code] = reveal(client, a, old)
    claim_id = file_claim(client, a, claim_body(old, code, remedy="refund"))
    approve(client, operator_headers(db), claim_id)
    # To the microsecond: W at the last instant of yesterday, Z and the deposit at midnight.
    midnight = datetime.combine(today, time.min, tzinfo=UTC)
    move_order(db, quiet_old, midnight - timedelta(microseconds=1))
    move_order(db, new, midnight)
    with db.session() as session:
        deposit = session.scalars(
            select(LedgerTransaction.id)
            .where(LedgerTransaction.kind == "deposit")
            .order_by(LedgerTransaction.id.desc())
        ).first()
        assert deposit is not None
        move_money(session, [deposit], midnight)

    first = report(client, a, yesterday)
    closing = 100000 - 9300 - 1860
    assert figures(first) == {
        "USD": expected(
            deposits=100000,
            order_debits=-9300,
            holds=-1860,
            closing=closing,
            held_closing=1860,
        )
    }
    assert lines(first) == [
        (old, "X", "delivered", "46.50", "USD"),
        (quiet_old, "W", "delivered", "46.50", "USD"),
        (waiting, "Y", "delivered", "18.60", "USD"),  # its status now
    ]

    second = report(client, a, today)
    assert figures(second) == {
        "USD": expected(
            opening=closing,
            deposits=5000,
            order_debits=-9300,
            refunds=4650,
            closing=closing + 5000 - 9300 + 4650,
            held_opening=1860,
            captured=-1860,
        )
    }
    # X and Y were placed yesterday, but money of theirs moved today (X's refund, Y's payment
    # from its hold): listed on both days. W only yesterday.
    assert lines(second) == [
        (old, "X", "delivered", "46.50", "USD"),
        (waiting, "Y", "delivered", "18.60", "USD"),
        (new, "Z", "delivered", "93.00", "USD"),
    ]
    assert_closing_is_balance(client, a, second)

    # Yesterday's closing is today's opening for B too, with nothing moving today.
    assert lines(report(client, b, yesterday)) == [(b_old, "B-old", "delivered", "46.50", "USD")]
    quiet = report(client, b, today)
    assert figures(quiet) == {"USD": expected(opening=95350, closing=95350)}
    assert lines(quiet) == []
    assert_closing_is_balance(client, b, quiet)

    # Before anything happened there is nothing to report.
    empty = report(client, a, before)
    assert empty["currencies"] == [] and empty["orders"] == []

    # The operator's check finds both days' books in order.
    for day in (yesterday, today):
        checked = factories.run_cli(database_url, "reconcile", "--date", day.isoformat())
        assert checked.exit_code == 0, (checked.stdout, checked.stderr, checked.exception)
    still(today)


def test_partners_and_their_sandboxes_see_only_their_own_money_and_orders(
    client: httpx.Client, db: Database, shop: factories.Shop
) -> None:
    today = utc_today()
    a_order = buy(client, shop.a.headers, "psn-us-50", 1, "same-id")
    b_orders = [
        buy(client, shop.b.headers, "psn-us-50", 1, "same-id"),
        buy(client, shop.b.headers, "psn-us-50", 3, "B-2"),
    ]
    sandbox = sandbox_headers(db, shop.a.id)
    topped = client.post(
        "/api/v1/sandbox/deposits", json={"amount": "300.00", "currency": "USD"}, headers=sandbox
    )
    assert topped.status_code == 201, topped.text
    test_orders = [
        buy(client, sandbox, "psn-us-50", 1, "S-1"),
        buy(client, sandbox, "psn-us-50", 1, "test_backorder_1", status="pending"),
        buy(client, sandbox, "psn-us-50", 2, "test_fail_1", status="failed"),
    ]

    live = report(client, shop.a.headers, today)
    assert figures(live) == {
        "USD": expected(deposits=100000, order_debits=-4650, closing=100000 - 4650)
    }
    assert lines(live) == [(a_order, "same-id", "delivered", "46.50", "USD")]
    assert_closing_is_balance(client, shop.a.headers, live)

    other = report(client, shop.b.headers, today)
    assert figures(other) == {
        "USD": expected(deposits=100000, order_debits=-18600, closing=100000 - 18600)
    }
    assert lines(other) == [
        (b_orders[0], "same-id", "delivered", "46.50", "USD"),
        (b_orders[1], "B-2", "delivered", "139.50", "USD"),
    ]

    rehearsal = report(client, sandbox, today)
    assert figures(rehearsal) == {
        "USD": expected(
            deposits=30000,
            order_debits=-4650,
            holds=-4650,
            closing=30000 - 4650 - 4650,
            held_closing=4650,
        )
    }
    assert lines(rehearsal) == [
        (test_orders[0], "S-1", "delivered", "46.50", "USD"),
        (test_orders[1], "test_backorder_1", "pending", "46.50", "USD"),
        (test_orders[2], "test_fail_1", "failed", "93.00", "USD"),  # no money ever moved
    ]
    assert_closing_is_balance(client, sandbox, rehearsal)

    # The sandbox's restock pays the held order: the live report still knows nothing of it.
    restocked = client.post("/api/v1/sandbox/restock", headers=sandbox)
    assert restocked.status_code == 200, restocked.text
    assert figures(report(client, sandbox, today))["USD"]["captured"] == -4650
    assert report(client, shop.a.headers, today) == live
    still(today)


# ---------------------------------------------------------------------------------------------
# CSV and bad input


def test_csv_is_one_table_matching_the_json_with_formulas_neutralised(
    client: httpx.Client, db: Database, vault: Vault, shop: factories.Shop
) -> None:
    today = utc_today()
    factories.add_product(db, EURO, region="DE", face="25", currency="EUR", price="23.75")
    factories.load_codes(db, vault, EURO, 1)
    factories.deposit(db, shop.a.id, "100.00", "EUR")
    hostile = ['=HYPERLINK("http://evil.example","x")', "+1+1", "-2+3", "@SUM(A1)", "plain=1"]
    for client_id in hostile:
        buy(client, shop.a.headers, "psn-us-50", 1, client_id)
    buy(client, shop.a.headers, EURO, 1, None)

    body = report(client, shop.a.headers, today)
    response = fetch(client, shop.a.headers, today, format="csv")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment")
    assert f'filename="codeshelf-reconciliation-{today.isoformat()}.csv"' in disposition

    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert list(rows[0]) == CSV_HEADER
    figure_rows = [row for row in rows if row["record"] != "order"]
    order_rows = [row for row in rows if row["record"] == "order"]
    assert rows == figure_rows + order_rows  # the figures first, then the orders
    assert [(row["record"], row["currency"], row["amount"]) for row in figure_rows] == [
        (name, line["currency"], line[name]["amount"])
        for line in body["currencies"]
        for name in FIGURES
    ]
    assert all(
        row["order_id"] == row["client_order_id"] == row["status"] == row["created_at"] == ""
        for row in figure_rows
    )
    assert [
        (
            row["order_id"],
            row["client_order_id"],
            row["status"],
            row["amount"],
            row["currency"],
            datetime.fromisoformat(row["created_at"]),
        )
        for row in order_rows
    ] == _expected_order_rows(body, hostile)
    assert {row["currency"] for row in figure_rows} == {"EUR", "USD"}
    still(today)


def _expected_order_rows(
    body: dict[str, Any], hostile: list[str]
) -> list[tuple[str, str, str, str, str, datetime]]:
    neutral = {
        hostile[0]: "'" + hostile[0],
        hostile[1]: "'+1+1",
        hostile[2]: "'-2+3",
        hostile[3]: "'@SUM(A1)",
        hostile[4]: "plain=1",  # only a leading formula character is dangerous
    }
    return [
        (
            line["order_id"],
            "" if line["client_order_id"] is None else neutral[line["client_order_id"]],
            line["status"],
            line["amount"]["amount"],
            line["amount"]["currency"],
            datetime.fromisoformat(line["created_at"]),
        )
        for line in body["orders"]
    ]


def test_bad_queries_are_problems_and_a_key_is_required(
    client: httpx.Client, db: Database, shop: factories.Shop
) -> None:
    bad: list[dict[str, str]] = [
        {},
        {"date": "2026-13-01"},
        {"date": "2026-02-30"},
        {"date": "yesterday"},
        {"date": ""},
        {"date": "2026-11-24", "format": "xml"},
        {"date": "2026-11-24", "format": "CSV"},
    ]
    for params in bad:
        response = client.get("/api/v1/reconciliation", params=params, headers=shop.a.headers)
        assert_problem(response, 422, "validation-error")

    query = {"date": utc_today().isoformat()}
    wrong = {"Authorization": "Bearer cs_live_not-a-real-key"}
    operator = operator_headers(db)  # an operator's key is not a partner's
    attempts: list[tuple[dict[str, str], dict[str, str]]] = [
        ({}, query),
        (wrong, query),
        (wrong, {**query, "format": "csv"}),
        (operator, query),
    ]
    for headers, params in attempts:
        response = client.get("/api/v1/reconciliation", params=params, headers=headers)
        assert_problem(response, 401, "unauthorized")

    # The first day there is: nothing happened then.
    body = report(client, shop.a.headers, date(1, 1, 1))
    assert body["currencies"] == [] and body["orders"] == []


def test_the_last_representable_day_is_not_a_server_error(
    client: httpx.Client, shop: factories.Shop
) -> None:
    response = fetch(client, shop.a.headers, "9999-12-31")
    assert response.status_code == 200, response.text
    # A day far ahead: nothing moves, it opens and closes on today's balance.
    [usd] = response.json()["currencies"]
    assert usd["opening"] == usd["closing"] == {"amount": "1000.00", "currency": "USD"}
    assert response.json()["orders"] == []
