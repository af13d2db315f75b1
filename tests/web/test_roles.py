"""Least privilege, cell by cell of the README's permission table, for the pages built so far:
each role sees and does what its job needs, and gets 403 for the rest."""

from __future__ import annotations

import httpx
import pytest

from codeshelf.kit.db import Database
from codeshelf.kit.vault import Vault
from codeshelf.members.roles import PERMISSIONS, Permission, Role, can
from tests.fixtures.browser import Portal, add_member
from tests.fixtures.factories import Shop
from tests.fixtures.http import order, order_count

ORDERS = {Role.OWNER, Role.ADMIN, Role.BUYER, Role.SUPPORT}
BUY_AND_REVEAL = {Role.OWNER, Role.ADMIN, Role.BUYER}
MONEY = {Role.OWNER, Role.ADMIN, Role.BUYER, Role.FINANCE}
CLAIMS = {Role.OWNER, Role.ADMIN, Role.SUPPORT}
TEAM = {Role.OWNER, Role.ADMIN}
FINANCE = {Role.OWNER, Role.ADMIN, Role.FINANCE}
DEVELOPER = {Role.OWNER, Role.ADMIN, Role.DEVELOPER}


def test_the_permission_table_is_least_privilege() -> None:
    assert PERMISSIONS[Role.OWNER] == frozenset(Permission)
    assert PERMISSIONS[Role.ADMIN] == frozenset(Permission) - {Permission.OWNERS}
    assert {role for role in Role if can(role, Permission.REVEAL_CODES)} == BUY_AND_REVEAL
    assert {role for role in Role if can(role, Permission.VIEW_ORDERS)} == ORDERS
    assert {role for role in Role if can(role, Permission.FINANCE)} == {
        Role.OWNER, Role.ADMIN, Role.FINANCE,
    }  # fmt: skip
    assert {role for role in Role if can(role, Permission.DEVELOPER)} == {
        Role.OWNER, Role.ADMIN, Role.DEVELOPER,
    }  # fmt: skip
    assert {role for role in Role if can(role, Permission.TEAM)} == {Role.OWNER, Role.ADMIN}
    assert not can("superuser", Permission.VIEW_ORDERS)


@pytest.mark.parametrize("role", list(Role))
def test_each_role_reaches_only_its_pages(
    role: Role, portal: Portal, shop: Shop, db: Database, vault: Vault, client: httpx.Client
) -> None:
    placed = order(client, shop.a.headers).json()["id"]
    portal.enter_as(db, vault, add_member(db, vault, shop.a.id, role, f"{role}@acme.example"))
    get = portal.page.request.get
    overview = get(f"{portal.url}/account/")
    assert overview.status == 200
    assert ("953.50 USD" in overview.text()) == (role in MONEY)
    assert get(f"{portal.url}/account/orders").status == (200 if role in ORDERS else 403)
    assert get(f"{portal.url}/account/orders/{placed}").status == (200 if role in ORDERS else 403)
    assert get(f"{portal.url}/account/orders/new").status == (
        200 if role in BUY_AND_REVEAL else 403
    )

    token = portal.csrf_token()
    reveal = portal.page.request.post(
        f"{portal.url}/account/orders/{placed}/reveal", form={"csrf_token": token}
    )
    assert reveal.status == (200 if role in BUY_AND_REVEAL else 403)
    assert (shop.codes[0] in reveal.text() or any(c in reveal.text() for c in shop.codes)) == (
        role in BUY_AND_REVEAL
    )
    bought = portal.page.request.post(
        f"{portal.url}/account/orders/new",
        form={"csrf_token": token, "product": shop.sku, "quantity": "1", "idempotency_key": role},
    )
    assert order_count(db) == (2 if role in BUY_AND_REVEAL else 1), bought.status
