"""The operator console in a real browser: staff sign in at /ops/ with password and TOTP, each
role reaches only its pages, partner and staff sessions never cross doors, and the support
team triages a claim with its screenshot beside the verdict."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import httpx
import pyotp
import pytest
from PIL import Image
from playwright.sync_api import expect
from sqlalchemy import select

from codeshelf.audit.models import AuditEvent
from codeshelf.kit.clock import utcnow
from codeshelf.kit.db import Database
from codeshelf.kit.settings import Settings
from codeshelf.kit.vault import Vault
from codeshelf.members.roles import STAFF_PERMISSIONS, StaffPermission, StaffRole
from codeshelf.members.service import signin
from tests.fixtures.browser import LIFETIMES, PASSWORD, Portal, add_member, add_staff
from tests.fixtures.claims import claim_body, place
from tests.fixtures.factories import Shop, run_cli
from tests.fixtures.http import order

PAGES = {
    "/ops/claims": StaffPermission.CLAIMS,
    "/ops/orders/review": StaffPermission.REVIEW_ORDERS,
    "/ops/stock": StaffPermission.STOCK,
    "/ops/stock/batches": StaffPermission.STOCK,
    "/ops/stock/imports": StaffPermission.STOCK,
    "/ops/partners": StaffPermission.PARTNERS,
    "/ops/applications": StaffPermission.PARTNERS,
    "/ops/deposits": StaffPermission.FINANCE,
    "/ops/reconciliation": StaffPermission.FINANCE,
    "/ops/webhooks": StaffPermission.PARTNERS,
    "/ops/audit": StaffPermission.AUDIT,
    "/ops/staff": StaffPermission.STAFF,
}


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_the_first_staff_member_joins_from_the_cli_link_and_signs_in(
    portal: Portal, db: Database
) -> None:
    result = run_cli(
        db.url, "operator", "member", "invite", "ada@wholesale.example", "--role", "admin",
        "--json",
    )  # fmt: skip
    link = json.loads(result.stdout)["link"].removeprefix("http://127.0.0.1:8000")
    assert link.startswith("/ops/invite/")
    page = portal.go(link)
    expect(page.get_by_role("heading", name="Join the staff on codeshelf")).to_be_visible()
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password again").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    secret = page.locator("#totp-secret").inner_text()
    page.get_by_label("Authentication code").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("list", name="Recovery codes").locator("li")).to_have_count(10)
    page.get_by_role("link", name="Continue to sign in").click()
    expect(page.get_by_role("heading", name="Sign in to the operator console")).to_be_visible()
    page.get_by_label("Email").fill("ada@wholesale.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    later = pyotp.TOTP(secret).at(datetime.now(UTC) + timedelta(seconds=30))  # each code once
    page.get_by_label("Authentication code").fill(later)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.get_by_role("navigation", name="Console")).to_contain_text("Staff")
    with db.read_session() as session:
        joined = session.scalars(select(AuditEvent).where(AuditEvent.action == "staff.join")).one()
    assert joined.actor.startswith("staff:mbr_") and joined.subject == "ada@wholesale.example"


def test_partner_and_staff_accounts_and_sessions_never_cross_doors(
    portal: Portal, shop: Shop, db: Database, vault: Vault
) -> None:
    partner = add_member(db, vault, shop.a.id, "owner", "owner@acme.example")
    staff = add_staff(db, vault, "admin", "ada@wholesale.example")
    for login, door in ((partner, "/ops"), (staff, "/account")):
        page = portal.go(f"{door}/login")
        page.get_by_label("Email").fill(login.email)
        page.get_by_label("Password").fill(login.password)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_contain_text("is not right")

    portal.enter_as(db, vault, partner)
    assert portal.page.request.get(f"{portal.url}/account/").status == 200
    to_console = portal.page.request.get(f"{portal.url}/ops/", max_redirects=0)
    assert to_console.status == 303 and to_console.headers["location"] == "/ops/login"
    partner_cookie = portal.page.context.cookies()[0]["value"]

    portal.page.context.clear_cookies()
    portal.enter_as(db, vault, staff)
    assert portal.page.request.get(f"{portal.url}/ops/").status == 200
    to_portal = portal.page.request.get(f"{portal.url}/account/", max_redirects=0)
    assert to_portal.status == 303 and to_portal.headers["location"] == "/account/login"
    staff_cookie = next(c["value"] for c in portal.page.context.cookies())

    # A session token presented under the other door's cookie name opens nothing.
    for name, token, path in (
        ("__Host-codeshelf_ops_session", partner_cookie, "/ops/"),
        ("__Host-codeshelf_session", staff_cookie, "/account/"),
    ):
        answer = httpx.get(
            f"{portal.url}{path}", headers={"Cookie": f"{name}={token}"}, follow_redirects=False
        )
        assert answer.status_code == 303, (name, path)


def test_an_invitation_opens_only_under_its_own_door(
    db: Database, portal: Portal, shop: Shop
) -> None:
    staff_link = json.loads(
        run_cli(
            db.url, "operator", "member", "invite", "x@w.example", "--role", "stock", "--json"
        ).stdout
    )["link"].removeprefix("http://127.0.0.1:8000")
    partner_link = json.loads(
        run_cli(
            db.url,
            "partner",
            "member",
            "invite",
            shop.a.id,
            "y@acme.example",
            "--role",
            "buyer",
            "--json",
        ).stdout
    )["link"].removeprefix("http://127.0.0.1:8000")
    get = portal.page.request.get
    assert get(portal.url + staff_link.replace("/ops/", "/account/")).status == 404
    assert get(portal.url + partner_link.replace("/account/", "/ops/")).status == 404
    assert get(portal.url + staff_link).status == 200


def test_the_staff_permission_table_is_least_privilege() -> None:
    assert STAFF_PERMISSIONS[StaffRole.ADMIN] == frozenset(StaffPermission)
    can = {role: STAFF_PERMISSIONS[role] for role in StaffRole}
    assert StaffPermission.FINANCE not in can[StaffRole.SUPPORT] | can[StaffRole.STOCK]
    assert StaffPermission.CLAIMS not in can[StaffRole.FINANCE] | can[StaffRole.STOCK]
    assert StaffPermission.STOCK not in can[StaffRole.SUPPORT] | can[StaffRole.FINANCE]
    assert all(StaffPermission.STAFF not in can[r] for r in StaffRole if r != StaffRole.ADMIN)


def test_support_triages_a_claim_with_its_screenshot_beside_the_verdict(
    portal: Portal, shop: Shop, db: Database, vault: Vault, client: httpx.Client
) -> None:
    order_id, codes = place(client, shop.a.headers, quantity=2)
    filed = client.post(
        "/api/v1/claims",
        data={"claim": json.dumps(claim_body(order_id, codes[0]))},
        files=[("screenshot", ("psn-error.png", _png(), "image/png"))],
        headers=shop.a.headers,
    )
    assert filed.status_code == 201, filed.text
    claim_id = filed.json()["id"]
    support = add_staff(db, vault, "support", "sam@wholesale.example")
    portal.enter_as(db, vault, support)

    page = portal.go("/ops/claims")
    page.get_by_role("link", name=claim_id).click()
    expect(page.get_by_role("heading", name=f"Claim {claim_id}")).to_be_visible()
    shot = page.get_by_role("img", name=f"Screenshot 1 of claim {claim_id}")
    expect(shot).to_be_visible()
    assert shot.evaluate("img => img.naturalWidth") == 64  # decrypted and served inline
    expect(page.get_by_role("table").first).to_contain_text("eligible")
    portal.shot("console-claim")

    evidence = portal.page.request.get(portal.url + shot.get_attribute("src"))  # type: ignore[operator]
    assert evidence.headers["cache-control"] == "no-store"
    assert evidence.body() == _png()

    page.get_by_role("button", name="Triage").click()
    expect(page.get_by_role("heading", name=f"Claim {claim_id}")).to_contain_text("triaged")
    page.get_by_label("Message to the partner").fill("Which console was it tried on?")
    page.get_by_role("button", name="Request info").click()
    expect(page.get_by_role("heading", name=f"Claim {claim_id}")).to_contain_text("needs info")
    partner_view = client.get(f"/api/v1/claims/{claim_id}", headers=shop.a.headers).json()
    assert partner_view["info_request"] == "Which console was it tried on?"

    page.get_by_label("Reason for approving").fill("screenshot shows WS-37432-9")
    page.get_by_role("button", name="Approve").click()
    # Stock was there: the replacement went out at once and the claim is resolved.
    expect(page.get_by_role("heading", name=f"Claim {claim_id}")).to_contain_text("resolved")
    expect(page.get_by_role("table").first).to_contain_text("replacement (done)")
    with db.read_session() as session:
        actors = set(
            session.scalars(select(AuditEvent.actor).where(AuditEvent.subject == claim_id))
        )
    assert f"staff:{support.member_id}" in actors
    expect(page.get_by_text("sam@wholesale.example").first).to_be_visible()  # the history


def test_a_refused_decision_is_shown_on_the_claim_screen(
    portal: Portal, shop: Shop, db: Database, vault: Vault, client: httpx.Client
) -> None:
    order_id, codes = place(client, shop.a.headers)
    body = claim_body(order_id, codes[0])
    body["redemption"]["exposed_publicly"] = True  # not covered: shown on a stream
    filed = client.post("/api/v1/claims", json=body, headers=shop.a.headers)
    claim_id = filed.json()["id"]
    portal.enter_as(db, vault, add_staff(db, vault, "support", "sam@wholesale.example"))
    page = portal.go(f"/ops/claims/{claim_id}")
    page.get_by_label("Reason for approving").fill("looks fine")
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_role("alert")).to_contain_text("not every code is eligible")


def test_the_console_answers_only_allowed_networks(
    portal: Portal, settings: Settings, live_server: object
) -> None:
    settings.ops_allow_networks = "10.0.0.0/8"
    try:
        assert portal.page.request.get(f"{portal.url}/ops/login").status == 404
        assert portal.page.request.get(f"{portal.url}/account/login").status == 200
        settings.ops_allow_networks = "10.0.0.0/8, 127.0.0.0/8"
        assert portal.page.request.get(f"{portal.url}/ops/login").status == 200
    finally:
        settings.ops_allow_networks = ""


def test_orders_under_review_show_why_and_are_decided_by_support(
    portal: Portal, shop: Shop, db: Database, vault: Vault, client: httpx.Client
) -> None:
    run_cli(db.url, "partner", "limits", shop.a.id, "--quantity-over", "1")
    held = order(client, shop.a.headers, {"product_id": "psn-us-50", "quantity": 2})
    assert held.json()["status"] == "pending", held.text
    portal.enter_as(db, vault, add_staff(db, vault, "support", "sam@wholesale.example"))
    page = portal.go("/ops/orders/review")
    row = page.get_by_role("row").filter(has_text=held.json()["id"])
    expect(row).to_contain_text("2 codes")
    row.get_by_label("Reason").fill("called the partner: expected")
    row.get_by_role("button", name="Approve").click()
    expect(page.get_by_text("No order is waiting for review.")).to_be_visible()
    answer = client.get(f"/api/v1/orders/{held.json()['id']}", headers=shop.a.headers).json()
    assert answer["status"] == "delivered"


def test_support_approves_one_code_and_rejects_the_other(
    portal: Portal, shop: Shop, db: Database, vault: Vault, client: httpx.Client
) -> None:
    order_id, codes = place(client, shop.a.headers, quantity=2)
    filed = client.post(
        "/api/v1/claims", json=claim_body(order_id, codes[0], codes[1]), headers=shop.a.headers
    )
    claim_id = filed.json()["id"]
    portal.enter_as(db, vault, add_staff(db, vault, "support", "sam@wholesale.example"))
    page = portal.go(f"/ops/claims/{claim_id}")
    form = page.locator("form").filter(has=page.get_by_role("group", name="Code by code"))
    form.get_by_role("radio", name="approve").first.check()
    form.get_by_role("radio", name="reject").nth(1).check()
    form.get_by_label("Rule for the rejected codes").select_option("not_covered.public_exposure")
    form.get_by_label("Reason").fill("the second code was posted on a stream")
    form.get_by_role("button", name="Decide these codes").click()
    expect(page.get_by_role("heading", name=f"Claim {claim_id}")).to_contain_text("resolved")
    portal.shot("console-claim-per-code")
    view = client.get(f"/api/v1/claims/{claim_id}", headers=shop.a.headers).json()
    assert [(c["decision"], c["decision_rule"]) for c in view["codes"]] == [
        ("approved", None), ("rejected", "not_covered.public_exposure"),
    ]  # fmt: skip
    assert view["codes"][0]["remedy"]["state"] == "done" and view["codes"][1]["remedy"] is None


def test_an_admin_invites_changes_and_removes_staff_from_the_staff_page(
    portal: Portal, db: Database, vault: Vault
) -> None:
    sam = add_staff(db, vault, "support", "sam@wholesale.example")
    portal.enter_as(db, vault, add_staff(db, vault, "admin", "ada@wholesale.example"))
    page = portal.go("/ops/staff")
    page.get_by_label("Email").fill("fin@wholesale.example")
    page.get_by_label("Role", exact=True).select_option("finance")
    page.get_by_role("button", name="Invite staff member").click()
    link = page.locator("#invite-link").inner_text()
    assert "/ops/invite/" in link
    expect(page.get_by_text("fin@wholesale.example (finance), until")).to_be_visible()
    page.get_by_label("Role of sam@wholesale.example", exact=True).select_option("stock")
    page.get_by_role("button", name="Change role of sam@wholesale.example").click()
    expect(page.get_by_role("row").filter(has_text="sam@")).to_contain_text("stock")

    sams = httpx.Client(base_url=portal.url, follow_redirects=False)
    with db.session() as session:
        first = signin.check_password(session, sam.email, sam.password, utcnow(), staff=True)
    with db.session() as session:
        started = signin.check_second_factor(
            session, vault, first.token, sam.code(), utcnow(), LIFETIMES, staff=True
        )
    cookie = {"Cookie": f"__Host-codeshelf_ops_session={started.token}"}
    assert sams.get("/ops/", headers=cookie).status_code == 200
    page.get_by_role("button", name="Remove sam@wholesale.example").click()
    expect(page.get_by_role("row").filter(has_text="sam@")).to_have_count(0)
    assert sams.get("/ops/", headers=cookie).status_code == 303  # signed out at once
    expect(page.get_by_role("button", name="Remove ada@wholesale.example")).to_have_count(0)


ACTIONS = {  # a form each permission guards: (path, form)
    StaffPermission.CLAIMS: ("/ops/claims/clm_00000000000000000000", {"action": "triage"}),
    StaffPermission.REVIEW_ORDERS: ("/ops/orders/ord_00000000000000000000/review", {}),
    StaffPermission.STOCK: ("/ops/stock", {"action": "price", "sku": "psn-us-50", "price": "x"}),
    StaffPermission.MANAGE_PARTNERS: ("/ops/partners", {"name": "", "owner_email": "x"}),
    StaffPermission.FINANCE: ("/ops/deposits/dep_00000000000000000000", {"decision": "approve"}),
    StaffPermission.STAFF: ("/ops/staff/invite", {"email": "x", "role": "admin"}),
}


@pytest.mark.parametrize("role", list(StaffRole))
def test_each_staff_role_reaches_only_its_pages_and_forms(
    role: StaffRole, portal: Portal, shop: Shop, db: Database, vault: Vault
) -> None:
    """Every page, and every guarded form posted with a valid token, by each role: 403
    without the permission; with it, the page, or the action's own answer (here a refusal of
    the made-up input, never 403)."""
    portal.enter_as(db, vault, add_staff(db, vault, role, f"{role}@wholesale.example"))
    get = portal.page.request.get
    assert get(f"{portal.url}/ops/").status == 200
    for path, permission in PAGES.items():
        expected = 200 if permission in STAFF_PERMISSIONS[role] else 403
        assert get(portal.url + path).status == expected, (role, path)
    token = portal.csrf_token("/ops")
    for permission, (path, form) in ACTIONS.items():
        answer = portal.page.request.post(
            portal.url + path, form={"csrf_token": token, **form}, max_redirects=0
        )
        allowed = permission in STAFF_PERMISSIONS[role]
        assert (answer.status == 403) != allowed, (role, path, answer.status)


def test_a_partner_api_key_opens_nothing_in_the_console(
    portal: Portal, shop: Shop, client: httpx.Client
) -> None:
    bearer = {"Authorization": f"Bearer {shop.a.key}"}
    for path in ("/ops/", "/ops/claims", "/ops/partners"):
        answer = httpx.get(portal.url + path, headers=bearer, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == "/ops/login"


def test_the_overview_counts_the_orders_waiting_for_review(
    portal: Portal, shop: Shop, db: Database, vault: Vault, client: httpx.Client
) -> None:
    run_cli(db.url, "partner", "limits", shop.a.id, "--quantity-over", "1")
    for _ in range(3):
        order(client, shop.a.headers, {"product_id": "psn-us-50", "quantity": 2})
    portal.enter_as(db, vault, add_staff(db, vault, "support", "sam@wholesale.example"))
    page = portal.go("/ops/")
    held = page.locator("div").filter(has=page.get_by_text("Orders awaiting review")).last
    expect(held.get_by_role("link")).to_have_text("3")


def test_digits_that_are_not_ascii_are_no_number_on_any_page(
    portal: Portal, shop: Shop, db: Database, vault: Vault
) -> None:
    """ "²".isdigit() is true and int("²") raises: every page that reads a number from a query
    or a form answers as for any other non-number, never 500."""
    portal.enter_as(db, vault, add_staff(db, vault, "admin", "ada@wholesale.example"))
    get = portal.page.request.get
    assert get(f"{portal.url}/ops/claims?due_within=%C2%B2").status == 200
    portal.page.context.clear_cookies()
    portal.enter_as(db, vault, add_member(db, vault, shop.a.id, "owner", "owner@acme.example"))
    assert get(f"{portal.url}/account/activity?before=%C2%B2").status == 200
