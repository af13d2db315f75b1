"""Authentication and the balance read from the event loop (``kit/reads.py``): on PostgreSQL
through psycopg's async pool, on SQLite inline. They answer exactly what a session answers."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import inspect

from codeshelf.kit.db import Database
from codeshelf.kit.money import Money
from codeshelf.partners import service as partners
from codeshelf.wallet import service as wallet
from codeshelf.wallet.models import AccountKind
from tests.fixtures.factories import Shop
from tests.fixtures.servers import LiveServer

pytestmark = pytest.mark.live  # a database of its own, with real commits: no test transaction


def test_the_async_read_finds_what_a_session_finds(db: Database, shop: Shop) -> None:
    with db.read_session() as session:
        expected = partners.authenticate(session, shop.a.key)
        assert expected is not None
        expected_partner, expected_key = expected
        expected_balances = wallet.Balances(
            wallet.balances(session, expected_partner.id),
            wallet.balances(session, expected_partner.id, AccountKind.HELD),
        )

    async def read() -> tuple[object, ...]:
        found = await partners.authenticate_async(db.reads, shop.a.key)
        assert found is not None
        balances = await wallet.all_balances_async(db.reads, found[0].id)
        unknown = await partners.authenticate_async(db.reads, shop.a.key + "x")
        await db.reads.aclose()
        return found[0], found[1], balances, unknown

    partner, api_key, balances, unknown = asyncio.run(read())
    assert unknown is None
    for got, want in ((partner, expected_partner), (api_key, expected_key)):
        state = inspect(got)
        assert state.detached and state.identity == inspect(want).identity
        columns = [column.key for column in state.mapper.columns]
        assert {c: getattr(got, c) for c in columns} == {c: getattr(want, c) for c in columns}
    assert partner.created_at.utcoffset() == timedelta(0)  # aware, in UTC, as from a session
    assert balances == expected_balances
    assert balances.available == [Money(100_000, "USD")] and balances.held == []


def test_a_revoked_key_is_refused_at_its_next_request(
    live_server: LiveServer, db: Database, shop: Shop
) -> None:
    with httpx.Client(base_url=live_server.url, headers=shop.a.headers) as client:
        assert client.get("/api/v1/balance").status_code == 200
        with db.session() as session:
            partners.revoke_key(session, shop.a.id, shop.a.key_id)
        refused = client.get("/api/v1/balance")
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]
