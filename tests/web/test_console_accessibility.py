"""Every console page, checked by axe-core in the browser (no serious or critical finding), each
one saved as a screenshot; with data on each, so tables and forms are there to check."""

from __future__ import annotations

import io
import json
from typing import Any

import httpx
import pytest
from PIL import Image
from sqlalchemy import update

from codeshelf.kit.db import Database
from codeshelf.kit.settings import Settings
from codeshelf.kit.vault import Vault
from codeshelf.webhooks.models import WebhookEndpoint
from tests.fixtures.applications import file as file_application
from tests.fixtures.browser import Portal, add_staff
from tests.fixtures.claims import claim_body, place
from tests.fixtures.factories import Shop, run_cli
from tests.fixtures.http import order
from tests.web.test_accessibility import _violations


@pytest.fixture
def settings(hook_settings: Settings) -> Settings:
    hook_settings.deposit_approval_over = "USD 100.00"
    return hook_settings  # webhook endpoints on loopback


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (320, 200), (30, 60, 160)).save(buffer, format="PNG")
    return buffer.getvalue()


def _data(shop: Shop, db: Database, client: httpx.Client) -> dict[str, str]:
    """A claim with a screenshot, a held order, a disabled endpoint, a waiting deposit and an
    access request: something on every page."""
    order_id, codes = place(client, shop.a.headers, quantity=2)
    claim = client.post(
        "/api/v1/claims",
        data={"claim": json.dumps(claim_body(order_id, codes[0], codes[1]))},
        files=[("screenshot", ("psn.png", _png(), "image/png"))],
        headers=shop.a.headers,
    ).json()["id"]
    run_cli(db.url, "partner", "limits", shop.b.id, "--quantity-over", "1")
    order(client, shop.b.headers, {"product_id": "psn-us-50", "quantity": 2})
    endpoint = client.post(
        "/api/v1/webhook-endpoints", json={"url": "http://127.0.0.1:9/x"}, headers=shop.a.headers
    ).json()["id"]
    with db.session() as session:
        session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.public_id == endpoint)
            .values(status="disabled", disabled_reason="410 Gone from the receiver")
        )
    run_cli(
        db.url, "wallet", "deposit", shop.a.id, "500.00", "--currency", "USD", "--reference",
        "WIRE-1",
    )  # fmt: skip
    application = file_application(db).application.public_id
    return {"claim": claim, "application": application, "partner": shop.a.id}


def test_no_console_page_has_serious_accessibility_violations(
    portal: Portal, shop: Shop, db: Database, vault: Vault, client: httpx.Client
) -> None:
    found: list[dict[str, Any]] = []
    link = json.loads(
        run_cli(
            db.url,
            "operator",
            "member",
            "invite",
            "new@wholesale.example",
            "--role",
            "stock",
            "--json",
        ).stdout
    )["link"].removeprefix("http://127.0.0.1:8000")
    portal.accept(link, lambda: found.extend(_violations(portal)))
    portal.go("/ops/login")
    found += _violations(portal)

    ids = _data(shop, db, client)
    admin = add_staff(db, vault, "admin", "ada@wholesale.example")
    page = portal.go("/ops/login")
    page.get_by_label("Email").fill(admin.email)
    page.get_by_label("Password").fill(admin.password)
    page.get_by_role("button", name="Sign in").click()
    found += _violations(portal)  # the code step
    page.get_by_label("Authentication code").fill(admin.code())
    page.get_by_role("button", name="Sign in").click()
    for path in (
        "/ops/",
        "/ops/claims",
        f"/ops/claims/{ids['claim']}",
        "/ops/orders/review",
        "/ops/partners",
        f"/ops/partners/{ids['partner']}",
        "/ops/deposits",
        "/ops/reconciliation",
        "/ops/applications",
        f"/ops/applications/{ids['application']}",
        "/ops/webhooks",
        "/ops/stock",
        "/ops/stock/batches",
        "/ops/stock/imports",
        "/ops/audit",
        "/ops/staff",
        "/ops/claims/clm_00000000000000000000",
    ):
        portal.go(path)
        found += _violations(portal)
    assert found == []
