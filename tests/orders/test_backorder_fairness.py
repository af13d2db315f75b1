"""Backorders cannot starve other partners (issue 15, item 7): a backorder sets aside only
stock that arrives after it, so what one partner could buy a moment ago it can still buy,
whatever backorders another placed; and backorders still fill, oldest first, from arrivals.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from codeshelf.invariants import check_all
from codeshelf.kit.clock import utcnow
from codeshelf.kit.db import Database
from codeshelf.kit.errors import DomainError
from codeshelf.kit.vault import Vault
from codeshelf.orders import service as orders
from codeshelf.orders.service import fulfilment
from codeshelf.partners import service as partners
from codeshelf.stock import service as stock
from tests.fixtures import factories
from tests.fixtures.backorders import (
    CHEAP,
    add_empty_products,
    available,
    backorder,
    placed,
    restock,
    set_aside,
    status_of,
)
from tests.fixtures.factories import Shop
from tests.fixtures.http import assert_problem, order

_products = itertools.count(1)


@pytest.fixture
def empty(shop: Shop, db: Database) -> Shop:
    add_empty_products(db)
    return shop


def test_a_backorder_for_one_more_than_the_stock_leaves_the_stock_on_sale(
    client: httpx.Client, empty: Shop, db: Database, vault: Vault
) -> None:
    """The issue's case: 3 in stock, A backorders 4 (and again, and again); B buys the 3."""
    factories.load_codes(db, vault, CHEAP, 3)
    waiting = [placed(backorder(client, empty.a.headers, 4), "pending")["id"] for _ in range(3)]
    assert available(client, empty.b.headers, CHEAP) == 3
    placed(order(client, empty.b.headers, {"product_id": CHEAP, "quantity": 3}), "delivered")
    assert_problem(
        order(client, empty.b.headers, {"product_id": CHEAP, "quantity": 1}),
        409,
        "insufficient-stock",
    )
    # What arrives now is A's, oldest backorder first: 4 codes fill the first, and the next
    # 4 are set aside for the second before anyone else may have them.
    _, delivered = restock(db, vault, CHEAP, 4)
    assert delivered == waiting[:1]
    factories.load_codes(db, vault, CHEAP, 3)  # not yet filled: set aside, not on sale
    assert set_aside(db, CHEAP) == 3
    assert available(client, empty.b.headers, CHEAP) == 0
    _, delivered = restock(db, vault, CHEAP, 5)
    assert delivered == waiting[1:]
    assert [status_of(client, empty.a.headers, oid) for oid in waiting] == ["delivered"] * 3
    with db.read_session() as session:
        assert check_all(session) == []


def test_a_failed_backorder_gives_what_was_set_aside_to_the_next_or_back_on_sale(
    client: httpx.Client, empty: Shop, db: Database, vault: Vault
) -> None:
    first = placed(backorder(client, empty.a.headers, 5), "pending")["id"]
    second = placed(backorder(client, empty.b.headers, 2), "pending")["id"]
    factories.load_codes(db, vault, CHEAP, 4)  # arrives for them: 4 set aside
    assert (set_aside(db, CHEAP), available(client, empty.b.headers, CHEAP)) == (4, 0)
    with db.session() as session:  # the first gives up (its deadline, here: now)
        partner = partners.get_partner(session, empty.a.id)
        stale = orders.get_order(session, partner.id, first)
        orders.fail(session, partner, stale, "backorder_expired")
    # The next in line keeps what it asks for; the rest is on sale again.
    assert (set_aside(db, CHEAP), available(client, empty.b.headers, CHEAP)) == (2, 2)
    with db.session() as session:
        assert fulfilment.fill_backorders(session) == [second]
    assert (set_aside(db, CHEAP), available(client, empty.b.headers, CHEAP)) == (0, 2)


# --- any sequence ------------------------------------------------------------------------------


@dataclass
class World:
    db: Database
    vault: Vault
    sku: str
    a: str
    b: str


def _world(db: Database, vault: Vault) -> World:
    n = next(_products)
    sku = factories.add_product(db, sku=f"fair-{n}", face=str(2000 + n), price="1.00")
    a, b = (factories.add_partner(db, f"Fair {n}.{i}").id for i in range(2))
    for partner in (a, b):
        factories.deposit(db, partner, "100000.00")
    return World(db, vault, sku, a, b)


def _offered(world: World, partner_id: str) -> int:
    """What /inventory shows this partner of the product now."""
    with world.db.read_session() as session:
        partner = partners.get_partner(session, partner_id)
        [line] = [x for x in stock.inventory(session, partner) if x.product.sku == world.sku]
    return line.available


def _place(world: World, partner_id: str, quantity: int, *, wait: bool) -> tuple[str, str]:
    """(order id or '', status or the refusal's slug), placed as the API places it."""
    with world.db.session() as session:
        partner = partners.get_partner(session, partner_id)
        item = orders.ItemRequest(quantity=quantity, pointer="#", product_id=world.sku)
        until = utcnow() + timedelta(hours=1) if wait else None
        try:
            with session.begin_nested():
                priced = orders.price_items(session, partner, [item])
                made = orders.place_order(session, partner, priced, None, backorder_until=until)
        except DomainError as exc:
            return "", exc.slug
        return made.public_id, made.status


def _arrive_and_fill(world: World, count: int) -> list[str]:
    factories.load_codes(world.db, world.vault, world.sku, count)
    with world.db.session() as session:
        return fulfilment.fill_backorders(session)


def _expire_all(world: World) -> list[str]:
    with world.db.session() as session:
        return fulfilment.expire_backorders(session, utcnow() + timedelta(hours=2))


STEP = st.one_of(
    st.tuples(st.sampled_from(["a waits", "b waits"]), st.integers(1, 6)),
    st.tuples(st.just("b buys"), st.integers(1, 4)),
    st.tuples(st.just("arrive"), st.integers(1, 5)),
    st.tuples(st.just("expire"), st.just(0)),
)


@given(start=st.integers(0, 5), steps=st.lists(STEP, max_size=7))
@hypothesis_settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_sequence_of_backorders_starves_another_partner(
    db: Database, vault: Vault, start: int, steps: list[tuple[str, int]]
) -> None:
    """Whatever backorders are placed, filled or expired: a backorder never lowers what the
    other partner is offered (unless it was delivered at once, from free stock), that partner's
    order for what it is offered succeeds, and backorders are filled oldest first."""
    world = _world(db, vault)
    if start:
        factories.load_codes(db, vault, world.sku, start)
    waiting: list[str] = []
    for action, quantity in steps:
        if action.endswith("waits"):
            who, other = (world.a, world.b) if action == "a waits" else (world.b, world.a)
            before = _offered(world, other)
            order_id, status = _place(world, who, quantity, wait=True)
            after = _offered(world, other)
            if status == "pending":
                waiting.append(order_id)
                assert after == before, (action, quantity)  # nothing taken from the other
            else:
                assert status == "delivered" and quantity <= before
                assert after == before - quantity
        elif action == "b buys":
            offered = _offered(world, world.b)
            _, status = _place(world, world.b, quantity, wait=False)
            assert status == ("delivered" if quantity <= offered else "insufficient-stock")
        elif action == "arrive":
            filled = _arrive_and_fill(world, quantity)
            assert filled == waiting[: len(filled)]  # oldest first, none skipped
            del waiting[: len(filled)]
        else:
            assert _expire_all(world) == waiting
            waiting.clear()
    # Enough stock for all of them: every one still waiting is filled, in order.
    wanted = sum(quantity for action, quantity in steps if action.endswith("waits"))
    if waiting:
        assert _arrive_and_fill(world, wanted) == waiting
    with db.read_session() as session:
        assert check_all(session) == []
