"""`codeshelf reconcile --date … [--json]`: every live partner's figures (the same as the partner
API's), and the day's books cross-checked: a clean day exits 0, each kind of damage is reported
as a mismatch and exits 1."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session
from typer.testing import Result

from codeshelf.kit.db import Database
from codeshelf.kit.money import Money
from codeshelf.kit.vault import Vault
from codeshelf.orders.models import Order, OrderItem
from codeshelf.orders.service.fulfilment import expire_backorders
from codeshelf.partners.models import Partner
from codeshelf.stock.models import Batch, Code, CodeState
from codeshelf.wallet import service as wallet
from codeshelf.wallet.models import LedgerTransaction, Posting, TransactionKind
from tests.fixtures import factories
from tests.fixtures.claims import approve, claim_body, file_claim, operator_headers
from tests.fixtures.claims import place as place_and_reveal
from tests.fixtures.reconciliation import (
    OTHER,
    BusyDay,
    backdate_everything,
    build_busy_day,
    buy,
    import_codes,
    lines,
    noon,
    report,
    sandbox_headers,
    still,
    utc_today,
)


def reconcile(database_url: str, *args: str) -> Result:
    return factories.run_cli(database_url, "reconcile", *args)


def reconciled(database_url: str, *args: str, exit_code: int = 0) -> dict[str, Any]:
    result = reconcile(database_url, *args, "--json")
    assert result.exit_code == exit_code, (result.stdout, result.stderr, result.exception)
    data: dict[str, Any] = json.loads(result.stdout)
    assert data["ok"] is (exit_code == 0)
    return data


def check_a_clean_day(
    client: httpx.Client,
    db: Database,
    vault: Vault,
    shop: factories.Shop,
    database_url: str,
    tmp_path: Path,
) -> tuple[BusyDay, str]:
    """Every way money moves, in one day: `reconcile` finds nothing wrong, and reports each
    live partner's figures exactly as the partner API does."""
    today = utc_today()
    day = build_busy_day(client, db, vault, shop, database_url, tmp_path)
    # More ways money moves: orders held for review (one approved, one rejected), a claim
    # answered with a replacement code, and a rehearsal in A's sandbox.
    limits = factories.run_cli(database_url, "partner", "limits", shop.b.id, "--quantity-over", "3")
    assert limits.exit_code == 0, limits.stderr
    approved = buy(client, shop.b.headers, "psn-us-50", 4, "B-REVIEW-1", status="pending")
    rejected = buy(client, shop.b.headers, "psn-us-50", 5, "B-REVIEW-2", status="pending")
    for verb, order_id in (("approve", approved), ("reject", rejected)):
        decided = factories.run_cli(
            database_url, "orders", "review", verb, order_id, "--reason", "checked"
        )
        assert decided.exit_code == 0, decided.stderr
    claimed, [code] = place_and_reveal(client, shop.b.headers)
    claim_id = file_claim(client, shop.b.headers, claim_body(claimed, code, remedy="replacement"))
    assert approve(client, operator_headers(db, "bob"), claim_id)["status"] == "resolved"
    sandbox = sandbox_headers(db, shop.a.id)
    topped = client.post(
        "/api/v1/sandbox/deposits", json={"amount": "100.00", "currency": "USD"}, headers=sandbox
    )
    assert topped.status_code == 201, topped.text
    rehearsed = buy(client, sandbox, "psn-us-50", 1, "S-1")
    buy(client, sandbox, "psn-us-50", 1, "test_backorder_1", status="pending")
    buy(client, sandbox, "psn-us-50", 1, "test_fail_1", status="failed")
    assert client.post("/api/v1/sandbox/restock", headers=sandbox).status_code == 200
    # An import whose file repeats a line, repeats a code in stock and has a malformed line:
    # its batch's count is the new codes it stored.
    repeated = factories.random_code()
    import_codes(
        database_url, tmp_path, "psn-us-50", 2, (repeated, repeated, shop.codes[-1], "nonsense")
    )

    data = reconciled(database_url, "--date", today.isoformat())
    assert data["date"] == today.isoformat()
    assert data["mismatches"] == []
    # Live partners only, each with exactly the figures its own API reports.
    assert [p["partner_id"] for p in data["partners"]] == [shop.a.id, shop.b.id]
    assert [p["name"] for p in data["partners"]] == ["Acme Games", "Bolt Keys"]
    for partner, handle in zip(data["partners"], (shop.a, shop.b), strict=True):
        assert partner["currencies"] == report(client, handle.headers, today)["currencies"]

    human = reconcile(database_url, "--date", today.isoformat())
    assert human.exit_code == 0, human.stderr
    assert f"Reconciliation {today.isoformat()} (UTC)" in human.stdout
    assert "no mismatches" in human.stdout
    assert "mismatch:" not in human.stderr

    # Without --date: yesterday, when nothing happened.
    quiet = reconciled(database_url)
    assert quiet["date"] == (today - timedelta(days=1)).isoformat()
    assert quiet["partners"] == [] and quiet["mismatches"] == []
    return day, rehearsed


@dataclass(frozen=True)
class Books:
    """Rows of the busy day the corruptions below damage."""

    deposit_txn: str  # A's first USD deposit (1000.00)
    bought: str  # 2 codes, 93.00, paid straight from the wallet
    bought_item: int
    bought_codes: list[int]
    payment_txn: str  # A-1's payment
    lapsed: str  # A-BO-2: failed, its hold released
    release_txn: str
    rehearsed: str  # S-1: a sandbox order (no codes), delivered and paid
    rehearsal_txn: str
    batch: str  # the import that delivered A-BO-1: 3 codes


def books(db: Database, bought: str, lapsed: str, rehearsed: str, batch: str) -> Books:
    with db.read_session() as session:

        def order(public_id: str) -> Order:
            found = session.scalar(select(Order).where(Order.public_id == public_id))
            assert found is not None
            return found

        def txn(kind: str, order_id: int | None = None) -> str:
            query = select(LedgerTransaction.public_id).where(LedgerTransaction.kind == kind)
            if order_id is not None:
                query = query.where(LedgerTransaction.order_id == order_id)
            found = session.scalars(query.order_by(LedgerTransaction.id)).first()
            assert found is not None
            return found

        a_1, a_bo_2 = order(bought), order(lapsed)
        [item] = a_1.items
        codes = list(session.scalars(select(Code.id).where(Code.order_item_id == item.id)))
        assert len(codes) == 2
        return Books(
            deposit_txn=txn(TransactionKind.DEPOSIT),
            bought=bought,
            bought_item=item.id,
            bought_codes=codes,
            payment_txn=txn(TransactionKind.ORDER, a_1.id),
            lapsed=lapsed,
            release_txn=txn(TransactionKind.RELEASE, a_bo_2.id),
            rehearsed=rehearsed,
            rehearsal_txn=txn(TransactionKind.ORDER, order(rehearsed).id),
            batch=batch,
        )


def _txn_id(session: Session, public_id: str) -> int:
    found = session.scalar(
        select(LedgerTransaction.id).where(LedgerTransaction.public_id == public_id)
    )
    assert found is not None
    return found


def _set_order(session: Session, public_id: str, **values: Any) -> None:
    session.execute(update(Order).where(Order.public_id == public_id).values(**values))


Change = Callable[[Session], None]


def corruptions(b: Books) -> list[tuple[str, Change, Change, list[str]]]:
    """(what, damage, repair, the mismatches `reconcile` must then report)."""
    yesterday = noon(utc_today() - timedelta(days=1))
    removed: list[dict[str, Any]] = []
    spare: list[int] = []

    def drop_funding_posting(session: Session) -> None:
        posting = session.scalars(
            select(Posting).where(
                Posting.transaction_id == _txn_id(session, b.deposit_txn), Posting.amount_minor < 0
            )
        ).one()
        removed.append(
            {
                "transaction_id": posting.transaction_id,
                "account_id": posting.account_id,
                "amount_minor": posting.amount_minor,
                "balance_after_minor": posting.balance_after_minor,
                "created_at": posting.created_at,
            }
        )
        session.execute(delete(Posting).where(Posting.id == posting.id))

    def restore_funding_posting(session: Session) -> None:
        session.add(Posting(**removed.pop()))

    def nudge_sales_posting(by: int) -> Change:
        def change(session: Session) -> None:
            session.execute(
                update(Posting)
                .where(
                    Posting.transaction_id == _txn_id(session, b.payment_txn),
                    Posting.amount_minor > 0,
                )
                .values(amount_minor=Posting.amount_minor + by)
            )

        return change

    def set_code(code_id: int, **values: Any) -> Change:
        def change(session: Session) -> None:
            session.execute(update(Code).where(Code.id == code_id).values(**values))

        return change

    def attach_spare_code(session: Session) -> None:
        found = session.scalars(select(Code.id).where(Code.state == CodeState.AVAILABLE)).first()
        assert found is not None
        spare.append(found)
        now = session.scalar(select(Order.delivered_at).where(Order.public_id == b.bought))
        session.execute(
            update(Code)
            .where(Code.id == found)
            .values(state=CodeState.DELIVERED, order_item_id=b.bought_item, delivered_at=now)
        )

    def detach_spare_code(session: Session) -> None:
        session.execute(
            update(Code)
            .where(Code.id == spare.pop())
            .values(state=CodeState.AVAILABLE, order_item_id=None, delivered_at=None)
        )

    def batch_count(by: int) -> Change:
        def change(session: Session) -> None:
            session.execute(
                update(Batch)
                .where(Batch.reference == b.batch)
                .values(code_count=Batch.code_count + by)
            )

        return change

    first_code = b.bought_codes[0]
    delivered_at = _delivered_at(b)
    return [
        (
            "a transaction that does not sum to zero",
            drop_funding_posting,
            restore_funding_posting,
            [f"ledger transaction {b.deposit_txn} sums to 100000, not 0"],
        ),
        (
            "a payment for an order that says it failed",
            lambda s: _set_order(s, b.rehearsed, status="failed"),
            lambda s: _set_order(s, b.rehearsed, status="delivered"),
            [f"order {b.rehearsal_txn} for order {b.rehearsed}, which is failed"],
        ),
        (
            "a release for an order that says it was delivered",
            lambda s: _set_order(s, b.lapsed, status="delivered"),
            lambda s: _set_order(s, b.lapsed, status="failed"),
            [f"release {b.release_txn} for order {b.lapsed}, which is delivered"],
        ),
        (
            "an order whose total is not what was paid",
            lambda s: _set_order(s, b.bought, total_minor=9301),
            lambda s: _set_order(s, b.bought, total_minor=9300),
            [f"order {b.bought} was delivered for 9301 but 9300 was paid"],
        ),
        (
            "a payment larger than its wallet debit",
            nudge_sales_posting(+1),
            nudge_sales_posting(-1),
            [
                f"ledger transaction {b.payment_txn} sums to 1, not 0",
                f"order {b.bought} was delivered for 9300 but 9301 was paid",
            ],
        ),
        (
            "an order's code delivered on another day",
            set_code(first_code, delivered_at=yesterday),
            delivered_at,
            [f"order {b.bought}: 2 codes ordered, 1 delivered that day"],
        ),
        (
            "a code delivered to no order",
            set_code(first_code, state=CodeState.VOIDED, order_item_id=None),
            set_code(first_code, state=CodeState.DELIVERED, order_item_id=b.bought_item),
            [
                f"order {b.bought}: 2 codes ordered, 1 delivered that day",
                "1 codes were delivered that day to no order",
            ],
        ),
        (
            "an order given a code too many",
            attach_spare_code,
            detach_spare_code,
            [f"order {b.bought}: 2 codes ordered, 3 delivered that day"],
        ),
        (
            "a batch whose stored count is not its codes",
            batch_count(+1),
            batch_count(-1),
            [f"batch {b.batch} imported 4 codes but 3 are stored"],
        ),
    ]


def _delivered_at(b: Books) -> Change:
    """Put the first code's delivery back at its order's delivery time."""

    def change(session: Session) -> None:
        when = session.scalar(select(Order.delivered_at).where(Order.public_id == b.bought))
        session.execute(update(Code).where(Code.id == b.bought_codes[0]).values(delivered_at=when))

    return change


def test_a_clean_day_is_ok_and_each_kind_of_damage_is_a_mismatch_with_exit_1(
    client: httpx.Client,
    db: Database,
    vault: Vault,
    shop: factories.Shop,
    database_url: str,
    tmp_path: Path,
) -> None:
    today = utc_today().isoformat()
    day, rehearsed = check_a_clean_day(client, db, vault, shop, database_url, tmp_path)
    bought, lapsed = day.a_orders[0][0], day.a_orders[3][0]
    b = books(db, bought, lapsed, rehearsed, day.imported_batch)
    clean = reconciled(database_url, "--date", today)
    assert clean["mismatches"] == []

    for what, damage, repair, expected in corruptions(b):
        with db.session() as session:
            damage(session)
        data = reconciled(database_url, "--date", today, exit_code=1)
        assert data["mismatches"] == expected, what
        # The figures are still printed beside the mismatches.
        assert [p["partner_id"] for p in data["partners"]] == [shop.a.id, shop.b.id], what
        with db.session() as session:
            repair(session)
    # Each repair undid its damage: the next damage alone was reported, and now nothing is.
    assert reconciled(database_url, "--date", today) == clean

    # An order charged twice (a second, balanced payment): reported, beside other damage.
    with db.session() as session:
        order_row = session.scalars(select(Order).where(Order.public_id == bought)).one()
        partner = session.get_one(Partner, order_row.partner_id)
        wallet.debit_for_order(session, partner, order_row.id, Money(9300, "USD"))
        _set_order(session, lapsed, status="delivered")
    twice = [
        f"release {b.release_txn} for order {lapsed}, which is delivered",
        f"order {bought} was delivered for 9300 but 18600 was paid",
    ]
    assert reconciled(database_url, "--date", today, exit_code=1)["mismatches"] == twice
    # Without --json: each mismatch on stderr, and exit 1.
    human = reconcile(database_url, "--date", today)
    assert human.exit_code == 1, (human.stdout, human.stderr, human.exception)
    assert human.exception is None or isinstance(human.exception, SystemExit)
    assert all(f"mismatch: {problem}" in human.stderr for problem in twice), human.stderr
    assert "no mismatches" not in human.stdout
    still(utc_today())


def test_damage_is_reported_on_its_own_day_only(
    client: httpx.Client, db: Database, shop: factories.Shop, database_url: str
) -> None:
    today = utc_today()
    yesterday = today - timedelta(days=1)
    old = buy(client, shop.a.headers, "psn-us-50", 2, "OLD")
    backdate_everything(db, noon(yesterday))
    assert reconciled(database_url, "--date", yesterday.isoformat())["mismatches"] == []
    new = buy(client, shop.a.headers, "psn-us-50", 1, "NEW")
    assert [line[0] for line in lines(report(client, shop.a.headers, today))] == [new]
    assert reconciled(database_url, "--date", today.isoformat())["mismatches"] == []

    with db.session() as session:
        _set_order(session, old, total_minor=1)
    damaged = reconciled(database_url, "--date", yesterday.isoformat(), exit_code=1)
    assert damaged["mismatches"] == [f"order {old} was delivered for 1 but 9300 was paid"]
    assert reconciled(database_url, "--date", today.isoformat())["mismatches"] == []
    still(today)


def test_a_bad_date_is_a_usage_error_not_a_mismatch(database_url: str) -> None:
    for bad in ("2026-13-01", "2026-02-30", "yesterday", "24.11.2026"):
        result = reconcile(database_url, "--date", bad, "--json")
        assert result.exit_code == 2, (bad, result.stdout, result.stderr, result.exception)
        assert result.stdout == ""
    # A day with nothing in it: ok, no partners.
    empty = reconciled(database_url, "--date", "2001-01-01")
    assert empty == {"date": "2001-01-01", "ok": True, "mismatches": [], "partners": []}


def test_the_last_representable_day_does_not_crash(database_url: str) -> None:
    result = reconcile(database_url, "--date", "9999-12-31", "--json")
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code in (0, 2), (result.stdout, result.stderr)


def test_a_code_delivered_to_a_failed_order_is_a_mismatch(
    client: httpx.Client, db: Database, vault: Vault, shop: factories.Shop, database_url: str
) -> None:
    today = utc_today().isoformat()
    factories.add_product(db, OTHER, face="20", price="18.60")
    lapsed = buy(client, shop.a.headers, OTHER, 1, "LAPSED", backorder=True, status="pending")
    with db.session() as session:
        expire_backorders(session, datetime.now(UTC) + timedelta(hours=73))
    factories.load_codes(db, vault, OTHER, 1)
    assert reconciled(database_url, "--date", today)["mismatches"] == []
    # The failed order's code goes out anyway: stock gone, nothing paid for it.
    with db.session() as session:
        item = session.scalars(select(OrderItem).join(Order).where(Order.public_id == lapsed)).one()
        code = session.scalars(
            select(Code).where(
                Code.state == CodeState.AVAILABLE, Code.product_id == item.product_id
            )
        ).one()
        code.state, code.order_item_id = CodeState.DELIVERED, item.id
        code.delivered_at = datetime.now(UTC)
    data = reconciled(database_url, "--date", today, exit_code=1)
    assert any(lapsed in problem for problem in data["mismatches"]), data["mismatches"]
