"""Every portal page, checked by axe-core in the browser: no serious or critical violation
(labels, contrast, headings, landmarks, names of controls)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe

from codeshelf.claims import service as claims
from codeshelf.kit.db import Database
from codeshelf.kit.settings import Settings
from codeshelf.kit.vault import Vault
from tests.fixtures.browser import Portal, add_member
from tests.fixtures.factories import Shop, run_cli
from tests.fixtures.http import order

SERIOUS = {"serious", "critical"}


@pytest.fixture
def settings(hook_settings: Settings) -> Settings:
    return hook_settings  # a webhook endpoint on loopback, for its delivery log's page


def _violations(portal: Portal) -> list[dict[str, Any]]:
    """axe-core's serious and critical findings on the page shown; and its screenshot."""
    path = portal.page.url.removeprefix(portal.url).split("?")[0].strip("/")
    name = re.sub(r"[^a-z0-9]+", "-", re.sub(r"(ord|clm|whe|mbr)_[0-9a-f]{20}", r"\1", path))
    portal.shot("page-" + (name or "overview") + f"-{len(list(portal.shots.glob('page-*')))}")
    response: dict[str, Any] = Axe().run(portal.page).response
    title = portal.page.title()
    if "<" in title or not title.endswith(" · codeshelf"):  # a block left open in a template
        return [{"page": portal.page.url, "id": "page-title", "nodes": [title]}]
    return [
        {"page": portal.page.url, "id": v["id"], "nodes": [n["target"] for n in v["nodes"]]}
        for v in response["violations"]
        if v["impact"] in SERIOUS
    ]


def test_no_page_has_serious_accessibility_violations(
    portal: Portal, shop: Shop, db: Database, vault: Vault, client: httpx.Client
) -> None:
    found: list[dict[str, Any]] = []
    result = run_cli(
        db.url,
        "partner",
        "member",
        "invite",
        shop.a.id,
        "new@acme.example",
        "--role",
        "buyer",
        "--json",
    )
    link = __import__("json").loads(result.stdout)["link"].removeprefix("http://127.0.0.1:8000")
    portal.accept(link, lambda: found.extend(_violations(portal)))

    portal.page.context.clear_cookies()
    portal.go("/account/login")
    found += _violations(portal)
    login = add_member(db, vault, shop.a.id, "owner", "owner@acme.example")
    page = portal.page
    page.get_by_label("Email").fill(login.email)
    page.get_by_label("Password").fill(login.password)
    page.get_by_role("button", name="Sign in").click()
    found += _violations(portal)  # the code step
    page.get_by_label("Authentication code").fill(login.code())
    page.get_by_role("button", name="Sign in").click()

    placed = order(client, shop.a.headers).json()["id"]
    for path in (
        "/account/",
        "/account/orders",
        "/account/orders/new",
        f"/account/orders/{placed}",
    ):
        portal.go(path)
        found += _violations(portal)
    portal.page.get_by_role("button", name="Reveal codes").click()
    portal.page.locator("#codes table").wait_for()
    found += _violations(portal)
    page = portal.go(f"/account/orders/{placed}/claim")
    found += _violations(portal)
    page.locator("input[name=code]").first.check()
    page.get_by_role("button", name="Check against the policy").click()
    page.locator("#verdicts table").wait_for()
    found += _violations(portal)
    page.get_by_role("button", name="File claim").click()
    page.get_by_role("heading", name="Codes and verdicts").wait_for()
    found += _violations(portal)
    claim_id = page.url.rsplit("/", 1)[1]
    with db.session() as session:
        claims.request_info(session, claim_id, claims.Actor("operator:alice"), "Which region?")
    portal.go(f"/account/claims/{claim_id}")
    found += _violations(portal)  # with the question and the form to answer it
    portal.go("/account/claims")
    found += _violations(portal)
    pages = ("team", "prices", "statement", "reconciliation", "activity", "developers")
    for path in (f"/account/{name}" for name in pages):
        portal.go(path)
        found += _violations(portal)
    endpoint = client.post(
        "/api/v1/webhook-endpoints", json={"url": "http://127.0.0.1:9/x"}, headers=shop.a.headers
    ).json()["id"]
    portal.go(f"/account/developers/endpoints/{endpoint}")
    found += _violations(portal)
    portal.go("/account/orders/ord_00000000000000000000")
    found += _violations(portal)
    assert found == []
