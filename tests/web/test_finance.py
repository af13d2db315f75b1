"""Finance's pages: the price list and the statement, on screen and as CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import httpx
from playwright.sync_api import expect
from sqlalchemy import select

from codeshelf.kit.db import Database
from codeshelf.kit.vault import Vault
from tests.fixtures.browser import Portal, add_member
from tests.fixtures.factories import Shop
from tests.fixtures.http import order


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_finance_reads_the_price_list_and_the_statement_and_downloads_both(
    portal: Portal, shop: Shop, db: Database, vault: Vault, client: httpx.Client
) -> None:
    placed = order(client, shop.a.headers, {"product_id": shop.sku, "quantity": 2}).json()["id"]
    portal.enter_as(db, vault, add_member(db, vault, shop.a.id, "finance", "money@acme.example"))
    page = portal.go("/account/prices")
    expect(page.get_by_role("cell", name="46.50 USD")).to_be_visible()
    with page.expect_download() as download:
        page.get_by_role("link", name="Download price list (CSV)").click()
    prices = _rows(download.value.path().read_text())
    assert prices == [
        {"product_id": shop.sku, "region": "US", "denomination": "50.00", "currency": "USD",
         "price": "46.50", "price_currency": "USD"}
    ]  # fmt: skip

    page = portal.go("/account/statement")
    expect(page.get_by_role("cell", name=placed)).to_be_visible()
    expect(page.get_by_role("cell", name="907.00 USD")).to_be_visible()  # the running balance
    portal.shot("statement")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download statement (CSV)").click()
    entries = _rows(download.value.path().read_text())
    assert [(e["kind"], e["amount"], e["balance_after"]) for e in entries] == [
        ("deposit", "1000.00", "1000.00"),
        ("order", "-93.00", "907.00"),
    ]
    assert entries[1]["order_id"] == placed

    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    later = portal.go(f"/account/statement?since={tomorrow}")
    expect(later.get_by_text("Nothing in these days.")).to_be_visible()
    today = datetime.now(UTC).date().isoformat()
    csv_today = portal.page.request.get(
        f"{portal.url}/account/statement?since={today}&until={today}&format=csv"
    )
    assert csv_today.headers["cache-control"] == "no-store" and len(_rows(csv_today.text())) == 2


def test_only_finance_roles_reach_the_money_pages(
    portal: Portal, shop: Shop, db: Database, vault: Vault
) -> None:
    portal.enter_as(db, vault, add_member(db, vault, shop.a.id, "support", "help@acme.example"))
    for path in ("/account/prices", "/account/statement", "/account/statement?format=csv"):
        assert portal.page.request.get(portal.url + path).status == 403


def test_the_overview_charts_what_was_spent_each_day(
    portal: Portal, shop: Shop, db: Database, vault: Vault, client: httpx.Client
) -> None:
    from sqlalchemy import update

    from codeshelf.wallet.models import Posting

    order(client, shop.a.headers, {"product_id": shop.sku, "quantity": 2})
    first = order(client, shop.a.headers).json()["id"]
    with db.session() as session:  # the first posting of the last order: two days ago
        last = session.scalars(select(Posting.id).order_by(Posting.id.desc())).first()
        two_days_ago = datetime.now(UTC) - timedelta(days=2)
        session.execute(
            update(Posting).where(Posting.id >= (last or 0) - 1).values(created_at=two_days_ago)
        )
    assert first
    portal.enter_as(db, vault, add_member(db, vault, shop.a.id, "finance", "money@acme.example"))
    page = portal.go("/account/")
    expect(page.get_by_role("img", name="Spend per day, last 30 days (USD)")).to_be_visible()
    assert page.locator("svg.chart rect").count() == 30
    page.get_by_text("The figures").click()
    rows = page.locator("details tbody tr").all_inner_texts()
    today = datetime.now(UTC).date().isoformat()
    earlier = (datetime.now(UTC) - timedelta(days=2)).date().isoformat()
    assert rows == [f"{earlier}\t46.50 USD", f"{today}\t93.00 USD"]
    portal.shot("overview-chart")


def test_the_reconciliation_page_and_csvs_defuse_formulas_typed_by_people(
    portal: Portal, shop: Shop, db: Database, vault: Vault, client: httpx.Client
) -> None:
    formula = '=HYPERLINK("http://evil.example","pay")'
    body = {"product_id": shop.sku, "quantity": 1, "client_order_id": formula}
    placed = order(client, shop.a.headers, body).json()["id"]
    portal.enter_as(db, vault, add_member(db, vault, shop.a.id, "owner", "own@acme.example"))
    page = portal.go("/account/reconciliation")
    expect(page.get_by_role("row").filter(has_text="order debits")).to_contain_text("-46.50 USD")
    expect(page.get_by_role("row").filter(has_text="closing").first).to_contain_text("953.50 USD")
    expect(page.get_by_role("link", name=placed)).to_be_visible()
    today = datetime.now(UTC).date().isoformat()
    for path in (f"/account/reconciliation?day={today}&format=csv", "/account/orders?format=csv"):
        text = portal.page.request.get(portal.url + path).text()
        [row] = [r for r in _rows(text) if r.get("order_id", r.get("id")) == placed]
        assert row["client_order_id"] == "'" + formula  # a spreadsheet shows it as text
    recon = _rows(
        portal.page.request.get(
            portal.url + f"/account/reconciliation?day={today}&format=csv"
        ).text()
    )
    assert {"record": "order_debits", "amount": "-46.50"}.items() <= next(
        r for r in recon if r["record"] == "order_debits"
    ).items()  # amounts keep their sign
