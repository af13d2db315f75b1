"""Money is conserved: property tests over random sequences of deposits and orders."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from codeshelf.catalog.models import Product
from codeshelf.invariants import check_all
from codeshelf.kit.db import Database
from codeshelf.kit.errors import DomainError
from codeshelf.kit.money import Money
from codeshelf.kit.vault import Vault
from codeshelf.orders import service as orders
from codeshelf.partners import service as partners
from codeshelf.stock.models import Code, CodeState
from codeshelf.wallet import service as wallet
from codeshelf.wallet.models import Account, Posting
from tests.fixtures import factories

PRICE = 4650
_references = itertools.count()


@dataclass(frozen=True)
class Deposit:
    partner: int
    cents: int


@dataclass(frozen=True)
class Buy:
    partner: int
    quantity: int


@dataclass(frozen=True)
class Restock:
    count: int


operations = st.lists(
    st.one_of(
        st.builds(Deposit, st.integers(0, 1), st.integers(1, 50_000)),
        st.builds(Buy, st.integers(0, 1), st.integers(1, 6)),
        st.builds(Restock, st.integers(1, 8)),
    ),
    max_size=12,
)


def _deposit(db: Database, partner_id: str, cents: int) -> None:
    with db.session() as session:
        partner = partners.get_partner(session, partner_id)
        wallet.deposit(session, partner, Money(cents, "USD"), f"prop-{next(_references)}")


def _buy(db: Database, partner_id: str, quantity: int) -> str | None:
    """Place an order the way the API does; returns the refusal's slug, or None."""
    with db.session() as session:
        partner = partners.get_partner(session, partner_id)
        item = orders.ItemRequest(quantity=quantity, pointer="#", product_id="psn-us-50")
        try:
            with session.begin_nested():
                priced = orders.price_items(session, partner, [item])
                orders.place_order(session, partner, priced, None)
        except DomainError as exc:
            return exc.slug
    return None


def _available(db: Database) -> int:
    with db.read_session() as session:
        return session.scalar(select(func.count()).where(Code.state == CodeState.AVAILABLE)) or 0


def _wallet_balance(db: Database, partner_id: str) -> int:
    with db.read_session() as session:
        partner = partners.get_partner(session, partner_id)
        found = wallet.balances(session, partner.id)
    return found[0].minor if found else 0


def _assert_conserved(db: Database) -> None:
    with db.read_session() as session:
        assert check_all(session) == []
        assert session.scalar(select(func.coalesce(func.sum(Posting.amount_minor), 0))) == 0
        lowest = session.scalar(
            select(func.min(Account.balance_minor)).where(Account.kind == "wallet")
        )
        assert lowest is None or lowest >= 0


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=operations)
def test_random_deposits_and_orders_conserve_money(
    db: Database, vault: Vault, steps: list[Deposit | Buy | Restock]
) -> None:
    with db.read_session() as session:
        has_product = session.scalar(select(func.count()).select_from(Product))
    if not has_product:
        factories.add_product(db)
    pair = [factories.add_partner(db, f"Prop {n}") for n in range(2)]
    expected = [0, 0]
    for step in steps:
        if isinstance(step, Deposit):
            _deposit(db, pair[step.partner].id, step.cents)
            expected[step.partner] += step.cents
        elif isinstance(step, Restock):
            factories.load_codes(db, vault, "psn-us-50", step.count)
        else:
            stock_before = _available(db)
            refusal = _buy(db, pair[step.partner].id, step.quantity)
            cost = PRICE * step.quantity
            if step.quantity > stock_before:
                assert refusal == "insufficient-stock"
            elif cost > expected[step.partner]:
                assert refusal == "insufficient-funds"
            else:
                assert refusal is None
                expected[step.partner] -= cost
            delivered = 0 if refusal else step.quantity
            assert _available(db) == stock_before - delivered
        for index, handle in enumerate(pair):
            assert _wallet_balance(db, handle.id) == expected[index]
    _assert_conserved(db)
