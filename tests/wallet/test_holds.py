"""Ledger holds: a pending order's total set aside (wallet -> held), paid from the hold when the
order is delivered (held -> sales) or given back when it fails (held -> wallet).

Every test checks the books after each move: every transaction sums to zero, each partner
account's balance is the sum of its postings (and each posting's running balance is right), and
``wallet.check`` / ``orders.check`` find nothing.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ClassVar

import httpx
import pytest
from hypothesis import HealthCheck, event
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from codeshelf.catalog.models import Product
from codeshelf.invariants import order_checks, stock_checks, wallet_checks
from codeshelf.kit.clock import utcnow
from codeshelf.kit.db import Database
from codeshelf.kit.errors import DomainError
from codeshelf.kit.money import Money
from codeshelf.kit.vault import Vault
from codeshelf.orders import service as orders
from codeshelf.orders.models import Order
from codeshelf.orders.service import fulfilment
from codeshelf.partners import service as partners
from codeshelf.partners.models import Partner
from codeshelf.stock.models import Code, CodeState
from codeshelf.wallet import service as wallet
from codeshelf.wallet.models import (
    Account,
    AccountKind,
    LedgerTransaction,
    Posting,
    TransactionKind,
)
from codeshelf.webhooks.models import Event
from tests.fixtures import factories
from tests.fixtures.factories import Shop
from tests.fixtures.http import order

PRICE = 4650  # psn-us-50 in the shop
FAR_FUTURE = timedelta(hours=10_000)


# --- helpers -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Placed:
    order_id: str | None
    status: str | None
    refusal: str | None


def place(
    db: Database,
    partner_id: str,
    quantity: int,
    *,
    sku: str = "psn-us-50",
    backorder_hours: int | None = None,
) -> Placed:
    """Place an order the way the API does (a savepoint around it); say how it ended."""
    with db.session() as session:
        partner = partners.get_partner(session, partner_id)
        until = None if backorder_hours is None else utcnow() + timedelta(hours=backorder_hours)
        item = orders.ItemRequest(quantity=quantity, pointer="#", product_id=sku)
        try:
            with session.begin_nested():
                priced = orders.price_items(session, partner, [item])
                placed = orders.place_order(session, partner, priced, None, backorder_until=until)
        except DomainError as exc:
            return Placed(None, None, exc.slug)
        return Placed(placed.public_id, placed.status, None)


def _account_balance(session: Session, partner: Partner, kind: str) -> int:
    found = session.scalar(
        select(Account.balance_minor).where(
            Account.partner_id == partner.id, Account.kind == kind, Account.currency == "USD"
        )
    )
    return found or 0


@dataclass(frozen=True)
class Books:
    """What a refusal must leave untouched."""

    wallet: int
    held: int
    transactions: int
    postings: int
    events: int
    orders: int

    @property
    def money(self) -> tuple[int, int]:
        return self.wallet, self.held


def books(db: Database, partner_id: str) -> Books:
    with db.read_session() as session:
        partner = partners.get_partner(session, partner_id)

        def count(model: Any) -> int:
            return session.scalar(select(func.count()).select_from(model)) or 0

        return Books(
            _account_balance(session, partner, AccountKind.WALLET),
            _account_balance(session, partner, AccountKind.HELD),
            count(LedgerTransaction),
            count(Posting),
            count(Event),
            count(Order),
        )


def assert_books_balanced(
    session: Session, *, orders_clean: bool = True, partner_ids: list[int] | None = None
) -> None:
    """Money is conserved and every partner account's running balance is right (of the
    ``partner_ids`` given, or of everyone)."""
    assert wallet_checks(session) == []
    if orders_clean:
        assert order_checks(session) == []
    per_transaction = session.execute(
        select(Posting.transaction_id, func.sum(Posting.amount_minor)).group_by(
            Posting.transaction_id
        )
    ).all()
    assert all(total == 0 for _, total in per_transaction)
    per_currency = session.execute(
        select(Account.currency, func.sum(Posting.amount_minor))
        .join(Posting, Posting.account_id == Account.id)
        .group_by(Account.currency)
    ).all()
    assert all(total == 0 for _, total in per_currency)
    accounts = select(Account).where(Account.kind.in_((AccountKind.WALLET, AccountKind.HELD)))
    if partner_ids is not None:
        accounts = accounts.where(Account.partner_id.in_(partner_ids))
    found = {acct.id: acct for acct in session.scalars(accounts)}
    running = dict.fromkeys(found, 0)
    for account_id, amount, after in session.execute(
        select(Posting.account_id, Posting.amount_minor, Posting.balance_after_minor)
        .where(Posting.account_id.in_(found))
        .order_by(Posting.id)
    ):
        running[account_id] += amount
        assert after == running[account_id], found[account_id].code
    for account_id, acct in found.items():
        assert acct.balance_minor == running[account_id], acct.code
        if acct.kind == AccountKind.HELD:
            assert acct.balance_minor >= 0, acct.code


def check_books(db: Database, *, orders_clean: bool = True) -> None:
    with db.read_session() as session:
        assert_books_balanced(session, orders_clean=orders_clean)


def order_row_id(db: Database, order_public_id: str) -> int:
    with db.read_session() as session:
        found = session.scalar(select(Order.id).where(Order.public_id == order_public_id))
    assert found is not None
    return found


def order_status(db: Database, order_public_id: str) -> tuple[str, str | None, str | None]:
    with db.read_session() as session:
        row = session.execute(
            select(Order.status, Order.hold_reason, Order.failure_reason).where(
                Order.public_id == order_public_id
            )
        ).one()
    return row[0], row[1], row[2]


def kinds_of(db: Database, order_public_id: str) -> list[str]:
    with db.read_session() as session:
        return list(
            session.scalars(
                select(LedgerTransaction.kind)
                .join(Order, Order.id == LedgerTransaction.order_id)
                .where(Order.public_id == order_public_id)
                .order_by(LedgerTransaction.id)
            )
        )


def sales_total(db: Database) -> int:
    with db.read_session() as session:
        total = session.scalar(
            select(func.coalesce(func.sum(Posting.amount_minor), 0))
            .join(Account, Account.id == Posting.account_id)
            .where(Account.kind == AccountKind.SALES)
        )
    return int(total or 0)


def fill(db: Database) -> list[str]:
    with db.session() as session:
        return fulfilment.fill_backorders(session)


def expire(db: Database, after: timedelta = FAR_FUTURE) -> list[str]:
    with db.session() as session:
        return fulfilment.expire_backorders(session, utcnow() + after)


def backordered(db: Database, sku: str = "psn-us-50") -> int:
    with db.read_session() as session:
        found = session.scalar(select(Product.backordered).where(Product.sku == sku))
    assert found is not None
    return found


# --- the service: hold, capture, release ------------------------------------------------------


def test_a_backorder_holds_its_total_and_delivery_pays_from_the_hold(
    db: Database, vault: Vault, shop: Shop
) -> None:
    # 21 codes wanted, 20 in stock: the order waits, its 976.50 set aside.
    placed = place(db, shop.a.id, 21, backorder_hours=24)
    assert placed.refusal is None and placed.order_id is not None
    assert placed.status == "pending"
    assert books(db, shop.a.id).money == (100_000 - 21 * PRICE, 21 * PRICE)
    assert backordered(db) == 21
    assert kinds_of(db, placed.order_id) == ["hold"]
    check_books(db)

    factories.load_codes(db, vault, shop.sku, 1)
    assert fill(db) == [placed.order_id]
    assert order_status(db, placed.order_id) == ("delivered", None, None)
    # Paid from the hold: the wallet did not move again, and the hold is empty.
    assert books(db, shop.a.id).money == (100_000 - 21 * PRICE, 0)
    assert sales_total(db) == 21 * PRICE
    assert kinds_of(db, placed.order_id) == ["hold", "order"]
    assert backordered(db) == 0
    check_books(db)


def test_an_expired_backorder_gets_its_hold_back(db: Database, shop: Shop) -> None:
    placed = place(db, shop.a.id, 21, backorder_hours=24)
    assert placed.order_id is not None
    assert expire(db, timedelta(hours=1)) == []  # not due yet
    assert expire(db) == [placed.order_id]
    assert order_status(db, placed.order_id) == ("failed", None, "backorder_expired")
    assert books(db, shop.a.id).money == (100_000, 0)
    assert kinds_of(db, placed.order_id) == ["hold", "release"]
    assert sales_total(db) == 0
    assert backordered(db) == 0
    assert expire(db) == []  # failed once, released once
    assert kinds_of(db, placed.order_id) == ["hold", "release"]
    check_books(db)


def test_direct_hold_capture_release_keep_every_transaction_balanced(
    db: Database, shop: Shop
) -> None:
    delivered = place(db, shop.a.id, 1)
    assert delivered.order_id is not None
    anchor = order_row_id(db, delivered.order_id)
    start = 100_000 - PRICE

    # An order's hold leaves whole (capture and release refuse any other amount).
    steps = [
        (wallet.hold_for_order, 10_000, (start - 10_000, 10_000)),
        (wallet.capture_hold, 10_000, (start - 10_000, 0)),
        (wallet.hold_for_order, 2_500, (start - 12_500, 2_500)),
        (wallet.release_hold, 2_500, (start - 10_000, 0)),
    ]
    for move, amount, expected in steps:
        with db.session() as session:
            partner = partners.get_partner(session, shop.a.id)
            move(session, partner, anchor, Money(amount, "USD"))
        assert books(db, shop.a.id).money == expected
        # The wallet's books stay right; the order's do not (a delivered order holding money).
        check_books(db, orders_clean=False)
    assert sales_total(db) == PRICE + 10_000
    with db.read_session() as session:
        [problem] = order_checks(session)
    assert delivered.order_id in problem


def test_a_hold_above_the_available_balance_is_refused_and_changes_nothing(
    db: Database, shop: Shop
) -> None:
    delivered = place(db, shop.a.id, 1)
    assert delivered.order_id is not None
    anchor = order_row_id(db, delivered.order_id)
    before = books(db, shop.a.id)
    with db.session() as session:
        partner = partners.get_partner(session, shop.a.id)
        with pytest.raises(wallet.InsufficientFundsError) as refused, session.begin_nested():
            wallet.hold_for_order(session, partner, anchor, Money(before.wallet + 1, "USD"))
    assert refused.value.extras == {
        "required": {"amount": "953.51", "currency": "USD"},
        "balance": {"amount": "953.50", "currency": "USD"},
    }
    assert books(db, shop.a.id) == before
    check_books(db)

    # Exactly the whole balance can be held.
    with db.session() as session:
        partner = partners.get_partner(session, shop.a.id)
        wallet.hold_for_order(session, partner, anchor, Money(before.wallet, "USD"))
    assert books(db, shop.a.id).money == (0, before.wallet)
    check_books(db, orders_clean=False)


def test_a_backorder_the_wallet_cannot_cover_is_refused_whole(db: Database, shop: Shop) -> None:
    before = books(db, shop.a.id)
    placed = place(db, shop.a.id, 22, backorder_hours=24)  # 1023.00 > 1000.00
    assert placed.refusal == "insufficient-funds"
    assert books(db, shop.a.id) == before  # no order, no hold, no event
    assert backordered(db) == 0
    check_books(db)


@pytest.mark.parametrize("move", ["capture", "release"])
def test_the_hold_can_never_pay_out_more_than_it_holds(db: Database, shop: Shop, move: str) -> None:
    placed = place(db, shop.a.id, 21, backorder_hours=24)
    assert placed.order_id is not None
    anchor = order_row_id(db, placed.order_id)
    before = books(db, shop.a.id)
    act = wallet.capture_hold if move == "capture" else wallet.release_hold
    with db.session() as session:
        partner = partners.get_partner(session, shop.a.id)
        # The conditional UPDATE refuses before the CHECK constraint is even reached: the
        # error is the ledger's own, not the database's.
        with pytest.raises(Exception) as refused, session.begin_nested():
            act(session, partner, anchor, Money(before.held + 1, "USD"))
        assert not isinstance(refused.value, IntegrityError)
    assert books(db, shop.a.id) == before
    check_books(db)

    # What is held can be paid out exactly once; a second time finds the hold empty.
    with db.session() as session:
        partner = partners.get_partner(session, shop.a.id)
        act(session, partner, anchor, Money(before.held, "USD"))
    with db.session() as session:
        partner = partners.get_partner(session, shop.a.id)
        with pytest.raises(Exception) as empty, session.begin_nested():
            act(session, partner, anchor, Money(1, "USD"))
        assert not isinstance(empty.value, IntegrityError)
    assert books(db, shop.a.id).held == 0
    check_books(db, orders_clean=False)


def test_the_database_refuses_a_negative_hold(db: Database, shop: Shop) -> None:
    """The held_not_negative CHECK guards writes that bypass the ledger's conditional UPDATE."""
    assert place(db, shop.a.id, 21, backorder_hours=24).order_id is not None
    with pytest.raises(IntegrityError, match="held_not_negative"), db.session() as session:
        session.execute(
            update(Account).where(Account.kind == AccountKind.HELD).values(balance_minor=-1)
        )
    # A wallet may not go below its credit line either.
    with pytest.raises(IntegrityError, match="wallet_not_negative"), db.session() as session:
        session.execute(
            update(Account).where(Account.kind == AccountKind.WALLET).values(balance_minor=-1)
        )
    with db.read_session() as session:
        held = session.scalar(
            select(func.min(Account.balance_minor)).where(Account.kind == AccountKind.HELD)
        )
    assert held == 21 * PRICE
    check_books(db)


def test_an_order_can_only_pay_out_or_release_its_own_hold_once(db: Database, shop: Shop) -> None:
    """The held account is one per partner and currency, not per order: paying one order's hold
    out twice would take another order's money. Capture and release check the order's own hold
    first, so the second capture (and a release after it) is refused and changes nothing."""
    factories.deposit(db, shop.a.id, "100.00")
    assert place(db, shop.b.id, 20).status == "delivered"  # nothing left on sale
    first = place(db, shop.a.id, 21, backorder_hours=24)
    second = place(db, shop.a.id, 1, backorder_hours=24)  # waits behind the first
    assert first.order_id and second.order_id
    assert order_status(db, second.order_id)[0] == "pending"
    assert books(db, shop.a.id).held == 22 * PRICE
    check_books(db)

    anchor = order_row_id(db, second.order_id)
    with db.session() as session:
        partner = partners.get_partner(session, shop.a.id)
        wallet.capture_hold(session, partner, anchor, Money(PRICE, "USD"))
    for pay_out in (wallet.capture_hold, wallet.release_hold):
        with pytest.raises(wallet.HoldMismatchError), db.session() as session:
            partner = partners.get_partner(session, shop.a.id)
            pay_out(session, partner, anchor, Money(PRICE, "USD"))
    assert books(db, shop.a.id).held == 21 * PRICE  # the first order's hold is whole


# --- the API: the statement and the balance show holds -----------------------------------------


def _ledger(client: httpx.Client, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = client.get("/api/v1/ledger", headers=headers)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def _balances(client: httpx.Client, headers: dict[str, str]) -> dict[str, Any]:
    response = client.get("/api/v1/balance", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_the_ledger_and_the_balance_show_holds_and_releases(
    client: httpx.Client, db: Database, vault: Vault, shop: Shop
) -> None:
    body = {"product_id": shop.sku, "quantity": 21, "allow_backorder": True}
    waiting = order(client, shop.a.headers, body)
    assert waiting.status_code == 201, waiting.text
    assert waiting.json()["status"] == "pending"
    assert waiting.json()["waiting_for"] == "stock"
    assert _balances(client, shop.a.headers) == {
        "data": [{"amount": "23.50", "currency": "USD"}],
        "held": [{"amount": "976.50", "currency": "USD"}],
    }
    # The other partner sees none of it.
    assert _balances(client, shop.b.headers)["held"] == []

    assert expire(db) == [waiting.json()["id"]]
    assert _balances(client, shop.a.headers) == {
        "data": [{"amount": "1000.00", "currency": "USD"}],
        "held": [{"amount": "0.00", "currency": "USD"}],
    }

    again = order(client, shop.a.headers, body)
    assert again.status_code == 201, again.text
    factories.load_codes(db, vault, shop.sku, 1)
    assert fill(db) == [again.json()["id"]]
    assert (
        client.get(f"/api/v1/orders/{again.json()['id']}", headers=shop.a.headers).json()["status"]
        == "delivered"
    )
    assert _balances(client, shop.a.headers) == {
        "data": [{"amount": "23.50", "currency": "USD"}],
        "held": [{"amount": "0.00", "currency": "USD"}],
    }

    entries = _ledger(client, shop.a.headers)
    # The delivery is paid from the hold: it moves no wallet money, so it has no entry.
    assert [(e["type"], e["amount"]["amount"], e["balance_after"]["amount"]) for e in entries] == [
        ("deposit", "1000.00", "1000.00"),
        ("hold", "-976.50", "23.50"),
        ("release", "976.50", "1000.00"),
        ("hold", "-976.50", "23.50"),
    ]
    assert [e["order_id"] for e in entries] == [
        None,
        waiting.json()["id"],
        waiting.json()["id"],
        again.json()["id"],
    ]
    # Each entry is its own ledger transaction, and a cursor for the next page.
    assert len({e["id"] for e in entries}) == 4
    page = client.get(
        "/api/v1/ledger", params={"cursor": entries[1]["id"]}, headers=shop.a.headers
    ).json()
    assert [e["type"] for e in page["data"]] == ["release", "hold"]
    check_books(db)


# --- a stateful model of deposits, orders, backorders, deliveries and expiries ------------------

_products = itertools.count(1)
ALERT = 30_000  # partner 0 asked for balance.low below 300.00; partner 1 did not


@dataclass
class Waiting:
    order_id: str
    partner: int
    quantity: int
    total: int
    hours: int


@dataclass
class Model:
    stock: int = 0
    waiting: list[Waiting] = field(default_factory=list)
    wallet: list[int] = field(default_factory=lambda: [0, 0])
    held: list[int] = field(default_factory=lambda: [0, 0])
    deposited: list[int] = field(default_factory=lambda: [0, 0])
    spent: list[int] = field(default_factory=lambda: [0, 0])
    alerts: list[int] = field(default_factory=lambda: [0, 0])

    set_aside: int = 0  # codes that arrived while backorders waited, kept for them

    @property
    def free(self) -> int:
        """Stock a new order may take: what is not set aside for waiting backorders."""
        return self.stock - min(self.set_aside, self.stock)

    @property
    def backordered(self) -> int:
        return sum(w.quantity for w in self.waiting)

    def arrive(self, count: int) -> None:
        self.stock += count
        self.set_aside = min(self.backordered, self.set_aside + count)

    def stopped_waiting(self, gone: Waiting, *, filled: bool) -> None:
        self.waiting.remove(gone)
        kept = max(self.set_aside - gone.quantity, 0) if filled else self.set_aside
        self.set_aside = min(kept, self.backordered)

    def debit(self, partner: int, amount: int) -> None:
        before = self.wallet[partner]
        self.wallet[partner] -= amount
        if partner == 0 and before >= ALERT > self.wallet[partner]:
            self.alerts[partner] += 1
            event("balance.low")


class HoldsMachine(RuleBasedStateMachine):
    """One product (its own, per example), two partners; the model says what must happen.

    Each example creates its own product and partners in the test's database, and its teardown
    expires whatever still waits, so examples do not see each other's backorders.
    """

    db: ClassVar[Database]
    vault: ClassVar[Vault]

    def __init__(self) -> None:
        super().__init__()
        self.model = Model()
        self.price = 0
        self.sku = ""
        self.partners: list[str] = []
        self.references = itertools.count()

    @initialize(
        price=st.integers(100, 9_000),
        funds=st.lists(st.integers(0, 60_000), min_size=2, max_size=2),
        codes=st.integers(0, 6),
    )
    def setup(self, price: int, funds: list[int], codes: int) -> None:
        n = next(_products)
        self.sku = f"prop-hold-{n}"
        self.price = price
        factories.add_product(
            self.db, sku=self.sku, face=str(1000 + n), price=Money(price, "USD").amount
        )
        self.partners = [factories.add_partner(self.db, f"Hold {n}.{i}").id for i in range(2)]
        with self.db.session() as session:
            first = partners.get_partner(session, self.partners[0])
            wallet.set_low_balance_alert(session, first, "USD", Money(ALERT, "USD"))
        for partner, cents in enumerate(funds):
            if cents:
                self.deposit(partner, cents)
        if codes:
            factories.load_codes(self.db, self.vault, self.sku, codes)
        self.model.stock = codes

    def teardown(self) -> None:
        if self.sku:
            expire(self.db)

    @rule(partner=st.integers(0, 1), cents=st.integers(1, 40_000))
    def deposit(self, partner: int, cents: int) -> None:
        with self.db.session() as session:
            found = partners.get_partner(session, self.partners[partner])
            reference = f"hold-{self.sku}-{next(self.references)}"
            wallet.deposit(session, found, Money(cents, "USD"), reference)
        self.model.wallet[partner] += cents
        self.model.deposited[partner] += cents

    @rule(partner=st.integers(0, 1), quantity=st.integers(1, 4))
    def buy_now(self, partner: int, quantity: int) -> None:
        placed = place(self.db, self.partners[partner], quantity, sku=self.sku)
        cost = quantity * self.price
        if quantity > self.model.free:
            assert placed.refusal == "insufficient-stock"
        elif cost > self.model.wallet[partner]:
            assert placed.refusal == "insufficient-funds"
        else:
            assert placed.status == "delivered", placed
            self.model.stock -= quantity
            self.model.debit(partner, cost)
            self.model.spent[partner] += cost
        event(f"buy: {placed.refusal or placed.status}")

    @rule(partner=st.integers(0, 1), quantity=st.integers(1, 6), hours=st.integers(1, 3))
    def backorder(self, partner: int, quantity: int, hours: int) -> None:
        placed = place(
            self.db, self.partners[partner], quantity, sku=self.sku, backorder_hours=hours
        )
        cost = quantity * self.price
        if cost > self.model.wallet[partner]:
            assert placed.refusal == "insufficient-funds"
        elif quantity <= self.model.free:
            assert placed.status == "delivered", placed
            self.model.stock -= quantity
            self.model.debit(partner, cost)
            self.model.spent[partner] += cost
        else:
            assert placed.status == "pending" and placed.order_id, placed
            self.model.debit(partner, cost)
            self.model.held[partner] += cost
            self.model.waiting.append(Waiting(placed.order_id, partner, quantity, cost, hours))
        event(f"backorder: {placed.refusal or placed.status}")

    @rule(count=st.integers(1, 5))
    def restock_and_fill(self, count: int) -> None:
        if count:
            factories.load_codes(self.db, self.vault, self.sku, count)
        self.model.arrive(count)
        expected = []
        while self.model.waiting and self.model.waiting[0].quantity <= self.model.stock:
            filled = self.model.waiting[0]  # first come, first served
            self.model.stopped_waiting(filled, filled=True)
            self.model.stock -= filled.quantity
            self.model.held[filled.partner] -= filled.total
            self.model.spent[filled.partner] += filled.total
            expected.append(filled.order_id)
        assert fill(self.db) == expected
        event(f"filled {len(expected)} backorders")

    @precondition(lambda self: bool(self.model.waiting))
    @rule(cut=st.integers(0, 3))
    def expire_some(self, cut: int) -> None:
        # Deadlines are whole hours after placing and the cut is whole hours after now, so the
        # seconds between them never decide which orders are due.
        due = [w for w in self.model.waiting if w.hours <= cut]
        for gone in due:
            self.model.stopped_waiting(gone, filled=False)
            self.model.held[gone.partner] -= gone.total
            self.model.wallet[gone.partner] += gone.total  # a credit: never balance.low
        assert expire(self.db, timedelta(hours=cut)) == [w.order_id for w in due]
        event(f"expired {len(due)} backorders")

    @invariant()
    def books_balance(self) -> None:
        if not self.sku:
            return
        with self.db.read_session() as session:
            ids = [partners.get_partner(session, public).id for public in self.partners]
            assert_books_balanced(session, partner_ids=ids)
            assert stock_checks(session) == []
            product = session.scalars(select(Product).where(Product.sku == self.sku)).one()
            assert product.backordered == self.model.backordered
            assert product.set_aside == self.model.set_aside
            available = session.scalar(
                select(func.count()).where(
                    Code.product_id == product.id, Code.state == CodeState.AVAILABLE
                )
            )
            assert available == self.model.stock
            for index, public in enumerate(self.partners):
                self._check_partner(session, index, partners.get_partner(session, public))

    def _check_partner(self, session: Session, index: int, partner: Partner) -> None:
        available = _account_balance(session, partner, AccountKind.WALLET)
        held = _account_balance(session, partner, AccountKind.HELD)
        deposited = session.scalar(
            select(func.coalesce(func.sum(Posting.amount_minor), 0))
            .join(LedgerTransaction, LedgerTransaction.id == Posting.transaction_id)
            .join(Account, Account.id == Posting.account_id)
            .where(
                LedgerTransaction.kind == TransactionKind.DEPOSIT,
                Account.partner_id == partner.id,
                Account.kind == AccountKind.WALLET,
            )
        )
        spent = session.scalar(
            select(func.coalesce(func.sum(Order.total_minor), 0)).where(
                Order.partner_id == partner.id, Order.status == "delivered"
            )
        )
        # From the database alone: every cent deposited is available, held or spent.
        assert available + held + int(spent or 0) == int(deposited or 0)
        # And the model agrees on each part.
        assert (available, held) == (self.model.wallet[index], self.model.held[index])
        assert (deposited, spent) == (self.model.deposited[index], self.model.spent[index])
        alerts = session.scalar(
            select(func.count()).where(Event.partner_id == partner.id, Event.type == "balance.low")
        )
        assert alerts == self.model.alerts[index]


@pytest.fixture
def machine(db: Database, vault: Vault) -> Iterator[type[HoldsMachine]]:
    bound = type("BoundHoldsMachine", (HoldsMachine,), {"db": db, "vault": vault})
    yield bound


@pytest.mark.slow
def test_holds_conserve_money_through_any_sequence(machine: type[HoldsMachine]) -> None:
    # Modest sizes: each step is a few real transactions plus the full set of checks, on both
    # databases; 15 examples of up to 12 steps (Hypothesis varies which rules each example
    # uses) explore the interleavings in a few seconds per database.
    run_state_machine_as_test(  # type: ignore[no-untyped-call]
        machine,
        settings=hypothesis_settings(
            max_examples=15,
            stateful_step_count=12,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
