"""Developers: keys made and revoked from the portal work (and stop working) on the API at
once; webhook endpoints added there receive signed events; the delivery log and replay."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import expect
from standardwebhooks.webhooks import Webhook

from codeshelf.kit.db import Database
from codeshelf.kit.settings import Settings
from codeshelf.kit.vault import Vault
from codeshelf.webhooks import delivery
from tests.fixtures.browser import Portal, add_member
from tests.fixtures.factories import Shop
from tests.fixtures.http import order
from tests.fixtures.receiver import Receiver


@pytest.fixture
def settings(hook_settings: Settings) -> Settings:
    return hook_settings  # endpoints on the loopback receiver


def _developer(portal: Portal, db: Database, vault: Vault, shop: Shop) -> None:
    portal.enter_as(db, vault, add_member(db, vault, shop.a.id, "developer", "dev@acme.example"))


def test_a_key_made_in_the_portal_works_at_once_and_stops_when_revoked(
    portal: Portal, shop: Shop, db: Database, vault: Vault
) -> None:
    _developer(portal, db, vault, shop)
    page = portal.go("/account/developers")
    page.get_by_role("button", name="Create a live key").click()
    secret = page.locator("#new-secret").inner_text()
    assert secret.startswith("cs_live_")
    portal.shot("developers")
    row = page.get_by_role("row").filter(has_text=secret[:12])
    expect(row).to_contain_text("never")
    with httpx.Client(base_url=portal.url) as api:
        auth = {"Authorization": f"Bearer {secret}"}
        assert api.get("/api/v1/balance", headers=auth).status_code == 200
        assert secret not in portal.go("/account/developers").content()  # shown once
        expect(row).not_to_contain_text("never")  # its last use, to the minute
        key_id = row.get_by_role("cell").first
        page.get_by_role("button", name=f"Revoke {key_id.inner_text()}").click()
        expect(page.get_by_text("revoked").first).to_be_visible()
        assert api.get("/api/v1/balance", headers=auth).status_code == 401
    page.get_by_role("button", name="Create a sandbox key").click()
    assert page.locator("#new-secret").inner_text().startswith("cs_test_")


def test_an_endpoint_added_in_the_portal_gets_signed_events_logged_and_replayable(
    portal: Portal, shop: Shop, db: Database, vault: Vault, client: httpx.Client
) -> None:
    _developer(portal, db, vault, shop)
    with Receiver() as receiver:
        page = portal.go("/account/developers")
        page.get_by_label("Endpoint URL").fill(receiver.url)
        page.get_by_label("order.fulfilled").check()
        page.get_by_role("button", name="Add endpoint").click()
        secret = page.locator("#new-secret").inner_text()
        assert secret.startswith("whsec_")
        placed = order(client, shop.a.headers).json()["id"]
        with httpx.Client() as sender:
            assert delivery.run_once(db, vault, sender, allow_private=True) == 1
        [got] = receiver.received
        assert Webhook(secret).verify(got.body, got.headers)["order_id"] == placed

        page = portal.go("/account/developers")
        page.get_by_role("link", name="whe_", exact=False).click()
        row = page.get_by_role("row").filter(has_text="order.fulfilled")
        expect(row).to_contain_text("200")
        expect(row).to_contain_text(" ms")
        portal.shot("delivery-log")
        row.get_by_role("button").click()  # replay
        with httpx.Client() as sender:
            assert delivery.run_once(db, vault, sender, allow_private=True) == 1
        assert len(receiver.received) == 2
        assert receiver.received[1].headers["webhook-id"] == got.headers["webhook-id"]

        page = portal.go("/account/developers")
        page.get_by_role("button", name="Disable", exact=False).click()
        expect(page.get_by_text("disabled by the partner")).to_be_visible()
        order(client, shop.a.headers)
        with httpx.Client() as sender:  # nothing goes to a disabled endpoint
            assert delivery.run_once(db, vault, sender, allow_private=True) == 0
        page.get_by_role("button", name="Enable", exact=False).click()
        page.get_by_role("button", name="Rotate secret", exact=False).click()
        rotated = page.locator("#new-secret").inner_text()
        assert rotated.startswith("whsec_") and rotated != secret
        page.get_by_role("button", name="Delete", exact=False).click()
        expect(page.get_by_text("No endpoints")).to_be_visible()


def test_other_roles_and_other_partners_stay_out(
    portal: Portal, shop: Shop, db: Database, vault: Vault, client: httpx.Client
) -> None:
    theirs = client.post(
        "/api/v1/webhook-endpoints", json={"url": "http://127.0.0.1:9/x"}, headers=shop.b.headers
    ).json()["id"]
    _developer(portal, db, vault, shop)
    request = portal.page.request
    assert request.get(f"{portal.url}/account/developers/endpoints/{theirs}").status == 404
    token = portal.csrf_token()
    deleted = request.post(
        f"{portal.url}/account/developers/endpoints/{theirs}/delete", form={"csrf_token": token}
    )
    assert deleted.status == 404
    portal.page.context.clear_cookies()
    portal.enter_as(db, vault, add_member(db, vault, shop.a.id, "buyer", "buy@acme.example"))
    assert request.get(f"{portal.url}/account/developers").status == 403


def test_a_balance_alert_set_in_the_portal_is_the_apis(
    portal: Portal, shop: Shop, db: Database, vault: Vault, client: httpx.Client
) -> None:
    _developer(portal, db, vault, shop)
    page = portal.go("/account/developers")
    page.get_by_label("Alert below (empty: none)").fill("250.00")
    page.get_by_role("button", name="Set alert").click()
    expect(page.get_by_text("USD: below 250.00 USD")).to_be_visible()
    alerts = client.get("/api/v1/balance/alerts", headers=shop.a.headers).json()
    assert alerts == {"data": [{"amount": "250.00", "currency": "USD"}]}
    page.get_by_label("Currency").fill("XYZ")
    page.get_by_label("Alert below (empty: none)").fill("1")
    page.get_by_role("button", name="Set alert").click()
    expect(page.get_by_role("alert")).to_contain_text("unknown currency")
