"""Activity: the partner's own audit trail, with names a person recognises, searchable, and
only the partner's own."""

from __future__ import annotations

import httpx
from playwright.sync_api import expect

from codeshelf.kit.db import Database
from codeshelf.kit.vault import Vault
from tests.fixtures.browser import Portal, add_member
from tests.fixtures.factories import Shop
from tests.fixtures.http import order


def test_who_revealed_which_orders_codes_is_shown_and_searchable(
    portal: Portal, shop: Shop, db: Database, vault: Vault, client: httpx.Client
) -> None:
    ours = order(client, shop.a.headers).json()["id"]
    by_api = client.get(f"/api/v1/orders/{ours}/codes", headers=shop.a.headers)
    assert by_api.status_code == 200
    theirs = order(client, shop.b.headers).json()["id"]
    assert client.get(f"/api/v1/orders/{theirs}/codes", headers=shop.b.headers).status_code == 200

    portal.enter_as(db, vault, add_member(db, vault, shop.a.id, "owner", "own@acme.example"))
    page = portal.go(f"/account/orders/{ours}")
    page.get_by_role("button", name="Reveal codes").click()
    page.locator("#codes table").wait_for()

    page = portal.go("/account/activity")
    reveals = page.get_by_role("row").filter(has_text="codes.reveal")
    expect(reveals).to_have_count(2)
    expect(reveals.filter(has_text="own@acme.example")).to_have_count(1)
    expect(reveals.filter(has_text=f"API key {shop.a.key_id}")).to_have_count(1)
    assert theirs not in page.content()  # another partner's trail stays theirs
    portal.shot("activity")
    page.get_by_label("Search").fill("member.")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("row").filter(has_text="codes.reveal")).to_have_count(0)
    expect(page.get_by_role("row").filter(has_text="member.invite")).to_have_count(1)


def test_only_owners_and_admins_read_the_activity(
    portal: Portal, shop: Shop, db: Database, vault: Vault
) -> None:
    portal.enter_as(db, vault, add_member(db, vault, shop.a.id, "buyer", "buy@acme.example"))
    assert portal.page.request.get(f"{portal.url}/account/activity").status == 403
