"""GET /api/v1/reconciliation: a partner's day per currency, checked against sums the test
computes itself from what it did, across day boundaries, partners and the sandbox; the CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from codeshelf.kit.db import Database
from codeshelf.kit.money import Money
from codeshelf.kit.vault import Vault
from codeshelf.wallet.models import LedgerTransaction
from tests.fixtures import factories
from tests.fixtures.claims import approve, claim_body, file_claim, operator_headers, reveal
from tests.fixtures.http import assert_problem
from tests.fixtures.reconciliation import (
    CHEAP,
    CSV_HEADER,
    EURO,
    FIGURES,
    assert_closing_is_balance,
    backdate_everything,
    build_busy_day,
    buy,
    expected,
    fetch,
    figures,
    import_codes,
    lines,
    move_money,
    move_order,
    noon,
    report,
    sandbox_headers,
    status_of,
    still,
    utc_today,
)


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
