"""The partner's claims API over HTTP against the real server, on both databases: filing and
previewing, hostile and malformed claims (each a clear problem, nothing changed), partner
isolation, listing, evidence and the claim's lifecycle with its customer messages."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from codeshelf.claims.policy import V1_1
from codeshelf.kit.db import Database
from codeshelf.kit.vault import Vault
from codeshelf.orders.models import Order
from tests.fixtures import factories
from tests.fixtures.claims import approve, claim_body, claims_of, operator_headers, place
from tests.fixtures.http import assert_problem, balance

CLAIMS = "/api/v1/claims"
PAID_ONE = "953.50"  # 1000.00 less one psn-us-50 code
RECEIVED = "We have received your report about this code and are checking it."
WITHDRAWN = "This report was withdrawn."
REPLACED = "Your report was approved and a replacement code has been issued."
REPLACEMENT_WAITING = "Your report was approved; a replacement code will be sent to you shortly."
REFUNDED = "Your report was approved and the price of the code has been refunded."


def _file(
    client: httpx.Client, headers: dict[str, str], body: dict[str, Any], dry_run: bool = False
) -> httpx.Response:
    params = {"dry_run": "true"} if dry_run else {}
    return client.post(CLAIMS, json=body, headers=headers, params=params)


def _filed(client: httpx.Client, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    response = _file(client, headers, body)
    assert response.status_code == 201, response.text
    claim: dict[str, Any] = response.json()
    return claim


def _get(client: httpx.Client, headers: dict[str, str], claim_id: str) -> dict[str, Any]:
    response = client.get(f"{CLAIMS}/{claim_id}", headers=headers)
    assert response.status_code == 200, response.text
    claim: dict[str, Any] = response.json()
    return claim


def _masked(code: str) -> str:
    return f"****-****-{code[-4:]}"


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _pointers(problem: dict[str, Any]) -> list[str]:
    return [error["pointer"] for error in problem.get("errors", []) if "pointer" in error]


def _assert_untouched(
    client: httpx.Client, headers: dict[str, str], expected_balance: str = PAID_ONE
) -> None:
    assert claims_of(client, headers) == []
    assert balance(client, headers) == expected_balance


def _age(db: Database, order_id: str, delivered_ago: timedelta) -> None:
    with db.session() as session:
        session.execute(
            update(Order)
            .where(Order.public_id == order_id)
            .values(delivered_at=datetime.now(UTC) - delivered_ago)
        )


# ---------------------------------------------------------------------------------------------
# Filing and previewing


def test_filing_answers_verdict_rule_policy_sla_and_message(
    client: httpx.Client, shop: factories.Shop
) -> None:
    order_id, [code] = place(client, shop.a.headers)
    before = datetime.now(UTC)
    response = _file(client, shop.a.headers, claim_body(order_id, code))
    assert response.status_code == 201, response.text
    claim = response.json()
    assert response.headers["location"] == f"{CLAIMS}/{claim['id']}"
    assert client.get(response.headers["location"], headers=shop.a.headers).json() == claim
    assert re.fullmatch(r"clm_[0-9a-f]{20}", claim["id"])
    assert claim["order_id"] == order_id
    assert claim["status"] == "submitted"
    assert claim["channel"] == "api"
    assert claim["policy_version"] == V1_1.version == "1.1"
    assert claim["problem"] == "invalid"
    assert claim["remedy"] == "replacement"
    assert claim["error_code"] == "WS-37432-9"
    assert claim["evidence"] == []
    assert claim["info_request"] is None
    assert claim["decision_rule"] is None
    assert claim["replacement_order_ids"] == []
    assert claim["codes"] == [
        {
            "position": 1,
            "code": _masked(code),
            "problem": "invalid",
            "classification": "code",
            "verdict": "eligible",
            "rule": "covered.invalid",
            "rule_text": V1_1.rule("covered.invalid").text,
            "missing": [],
            "code_region": None,
            "error_code": None,
            "decision": None,  # undecided until the operator decides the code
            "decision_rule": None,
            "decision_rule_text": None,
            "decided_at": None,
            "remedy": None,
        }
    ]
    submitted_at = _at(claim["submitted_at"])
    assert before - timedelta(seconds=5) <= submitted_at <= datetime.now(UTC)
    sla = claim["sla"]
    assert _at(sla["triage_due_at"]) == submitted_at + timedelta(hours=24)
    assert _at(sla["due_at"]) == _at(sla["triage_due_at"])
    assert sla["remedy_due_at"] is None and sla["upstream_due_at"] is None
    assert sla["overdue"] is False
    assert claim["customer_message"] == RECEIVED
    assert code not in response.text  # the code itself is never echoed, only its last four
    assert [c["id"] for c in claims_of(client, shop.a.headers)] == [claim["id"]]
    assert balance(client, shop.a.headers) == PAID_ONE  # filing alone pays nothing


def test_several_codes_of_one_order_each_get_their_own_verdict(
    client: httpx.Client, shop: factories.Shop
) -> None:
    order_id, codes = place(client, shop.a.headers, quantity=4)
    body = claim_body(
        order_id,
        codes[0].lower().replace("-", ""),  # case and hyphens are ignored
        {"code": codes[1].lower(), "problem": "wrong_region", "code_region": "tr"},
        {"code": f" {codes[2].replace('-', '')} ", "problem": "account_restricted"},
        {"code": codes[3], "problem": "wrong_region"},  # without the region PSN showed
    )
    claim = _filed(client, shop.a.headers, body)
    judged = [
        (c["code"], c["problem"], c["classification"], c["verdict"], c["rule"], c["missing"])
        for c in claim["codes"]
    ]
    assert judged == [
        (_masked(codes[0]), "invalid", "code", "eligible", "covered.invalid", []),
        (
            _masked(codes[1]),
            "wrong_region",
            "wrong_region",
            "eligible",
            "covered.wrong_region",
            [],
        ),
        (
            _masked(codes[2]),
            "account_restricted",
            "code",
            "not_covered",
            "not_covered.account_restriction",
            [],
        ),
        (
            _masked(codes[3]),
            "wrong_region",
            "wrong_region",
            "needs_evidence",
            None,
            ["code_region"],
        ),
    ]
    assert claim["codes"][2]["rule_text"] == V1_1.rule("not_covered.account_restriction").text
    assert claim["codes"][3]["rule_text"] is None


def test_dry_run_judges_and_files_nothing(client: httpx.Client, shop: factories.Shop) -> None:
    order_id, [code] = place(client, shop.a.headers)
    preview = _file(client, shop.a.headers, claim_body(order_id, code), dry_run=True)
    assert preview.status_code == 200, preview.text
    assert "location" not in preview.headers
    assert preview.json() == {
        "dry_run": True,
        "order_id": order_id,
        "policy_version": "1.1",
        "codes": [
            {
                "code": _masked(code),
                "problem": "invalid",
                "classification": "code",
                "verdict": "eligible",
                "rule": "covered.invalid",
                "rule_text": V1_1.rule("covered.invalid").text,
                "missing": [],
            }
        ],
        "would_be_filed": True,
        "refusal": None,
        "refusal_detail": None,
    }
    incomplete = claim_body(order_id, code, redemption={})
    del incomplete["error_code"]
    missing = _file(client, shop.a.headers, incomplete, dry_run=True)
    assert missing.status_code == 200, missing.text
    [judged] = missing.json()["codes"]
    assert judged["verdict"] == "needs_evidence"
    assert judged["missing"] == ["error_evidence", "account_region", "attempted_at"]
    _assert_untouched(client, shop.a.headers)
    # Nothing was held: the same code can be filed for real.
    _filed(client, shop.a.headers, claim_body(order_id, code))


def test_dry_run_after_the_window_says_it_would_not_be_filed(
    client: httpx.Client, db: Database, shop: factories.Shop
) -> None:
    order_id, [code] = place(client, shop.a.headers)
    _age(db, order_id, timedelta(days=8))
    preview = _file(client, shop.a.headers, claim_body(order_id, code), dry_run=True)
    assert preview.status_code == 200, preview.text
    body = preview.json()
    assert body["would_be_filed"] is False
    [judged] = body["codes"]
    assert (judged["verdict"], judged["rule"]) == ("not_covered", "not_covered.window")
    assert judged["rule_text"] == V1_1.rule("not_covered.window").text
    assert body["refusal"] == "claim-window-closed"
    _assert_untouched(client, shop.a.headers)


def test_dry_run_says_when_the_code_is_already_claimed(
    client: httpx.Client, shop: factories.Shop
) -> None:
    order_id, [code] = place(client, shop.a.headers)
    existing = _filed(client, shop.a.headers, claim_body(order_id, code))
    preview = _file(client, shop.a.headers, claim_body(order_id, code), dry_run=True)
    assert preview.status_code == 200, preview.text
    body = preview.json()
    assert (body["would_be_filed"], body["refusal"]) == (False, "claim-already-open")
    assert existing["id"] in body["refusal_detail"]


def test_claim_after_seven_days_is_refused(
    client: httpx.Client, db: Database, shop: factories.Shop
) -> None:
    order_id, [code] = place(client, shop.a.headers)
    _age(db, order_id, timedelta(hours=168, minutes=1))
    problem = assert_problem(
        _file(client, shop.a.headers, claim_body(order_id, code)), 422, "claim-window-closed"
    )
    assert problem["rule"] == "not_covered.window"
    assert "#/order_id" in _pointers(problem)
    closed_at = _at(problem["closed_at"])
    assert datetime.now(UTC) - timedelta(minutes=2) < closed_at < datetime.now(UTC)
    _assert_untouched(client, shop.a.headers)


def test_claim_just_inside_the_window_is_filed(
    client: httpx.Client, db: Database, shop: factories.Shop
) -> None:
    order_id, [code] = place(client, shop.a.headers)
    _age(db, order_id, timedelta(hours=167))
    claim = _filed(client, shop.a.headers, claim_body(order_id, code))
    assert claim["codes"][0]["verdict"] == "eligible"


# ---------------------------------------------------------------------------------------------
# Hostile and malformed claims: a clear problem each, and nothing changed


def _shape(problem: dict[str, Any], code: str) -> dict[str, Any]:
    """The problem with the claimed code's last four characters blanked out."""
    shaped = dict(problem)
    shaped["detail"] = problem["detail"].replace(code[-4:], "XXXX")
    shaped["errors"] = [
        {**error, "detail": error["detail"].replace(code[-4:], "XXXX")}
        for error in problem["errors"]
    ]
    return shaped


def test_another_partners_code_is_answered_like_a_code_never_issued(
    client: httpx.Client, shop: factories.Shop
) -> None:
    order_a, _ = place(client, shop.a.headers)
    order_b, [code_b] = place(client, shop.b.headers)
    never_issued = factories.random_code()
    foreign = assert_problem(
        _file(client, shop.a.headers, claim_body(order_a, code_b)), 422, "code-not-on-order"
    )
    unknown = assert_problem(
        _file(client, shop.a.headers, claim_body(order_a, never_issued)), 422, "code-not-on-order"
    )
    assert _pointers(foreign) == ["#/codes/0/code"]
    assert _shape(foreign, code_b) == _shape(unknown, never_issued)
    text = str(foreign).lower()
    assert code_b.lower() not in text and code_b[:4].lower() not in text
    assert order_b not in str(foreign) and shop.b.id not in str(foreign)
    assert "partner" not in text and "another" not in text
    _assert_untouched(client, shop.a.headers)
    _assert_untouched(client, shop.b.headers)
    # B's code is untouched: B can still claim it.
    _filed(client, shop.b.headers, claim_body(order_b, code_b))


def test_another_partners_order_is_not_found(client: httpx.Client, shop: factories.Shop) -> None:
    place(client, shop.a.headers)
    order_b, [code_b] = place(client, shop.b.headers)
    foreign = assert_problem(
        _file(client, shop.a.headers, claim_body(order_b, code_b)), 404, "order-not-found"
    )
    missing_id = f"ord_{secrets.token_hex(10)}"
    missing = assert_problem(
        _file(client, shop.a.headers, claim_body(missing_id, code_b)), 404, "order-not-found"
    )
    assert foreign["detail"].replace(order_b, "ID") == missing["detail"].replace(missing_id, "ID")
    assert set(foreign) == set(missing)
    preview = _file(client, shop.a.headers, claim_body(order_b, code_b), dry_run=True)
    assert_problem(preview, 404, "order-not-found")
    assert_problem(
        _file(client, shop.a.headers, claim_body("ord_../../x", code_b)), 404, "order-not-found"
    )
    _assert_untouched(client, shop.a.headers)
    _assert_untouched(client, shop.b.headers)


def test_code_from_another_order_of_the_same_partner_is_not_on_the_order(
    client: httpx.Client, shop: factories.Shop
) -> None:
    first, [code_first] = place(client, shop.a.headers)
    second, [code_second] = place(client, shop.a.headers)
    problem = assert_problem(
        _file(client, shop.a.headers, claim_body(first, code_first, code_second)),
        422,
        "code-not-on-order",
    )
    assert _pointers(problem) == ["#/codes/1/code"]
    assert second not in problem["detail"]
    _assert_untouched(client, shop.a.headers, "907.00")


def test_the_same_code_twice_in_one_claim_is_refused(
    client: httpx.Client, shop: factories.Shop
) -> None:
    order_id, [code] = place(client, shop.a.headers)
    problem = assert_problem(
        _file(client, shop.a.headers, claim_body(order_id, code, code.lower().replace("-", ""))),
        422,
        "validation-error",
    )
    assert _pointers(problem) == ["#/codes/1"]
    assert "twice" in problem["detail"]
    _assert_untouched(client, shop.a.headers)


def test_a_second_open_claim_on_a_code_conflicts(
    client: httpx.Client, shop: factories.Shop
) -> None:
    order_id, codes = place(client, shop.a.headers, quantity=2)
    first = _filed(client, shop.a.headers, claim_body(order_id, codes[0]))
    problem = assert_problem(
        _file(client, shop.a.headers, claim_body(order_id, codes[1], codes[0])),
        409,
        "claim-already-open",
    )
    assert problem["existing_claim_id"] == first["id"]
    assert _pointers(problem) == ["#/codes/1"]
    assert [c["id"] for c in claims_of(client, shop.a.headers)] == [first["id"]]
    assert _get(client, shop.a.headers, first["id"]) == first
    # The refused claim held nothing: the other code can be claimed on its own.
    second = _filed(client, shop.a.headers, claim_body(order_id, codes[1]))
    assert second["codes"][0]["code"] == _masked(codes[1])


def test_a_code_already_remedied_cannot_be_claimed_again(
    client: httpx.Client, db: Database, shop: factories.Shop
) -> None:
    order_id, [code] = place(client, shop.a.headers)
    claim = _filed(client, shop.a.headers, claim_body(order_id, code, remedy="refund"))
    assert approve(client, operator_headers(db), claim["id"])["status"] == "resolved"
    assert balance(client, shop.a.headers) == "1000.00"
    problem = assert_problem(
        _file(client, shop.a.headers, claim_body(order_id, code, remedy="refund")),
        409,
        "code-already-remedied",
    )
    assert _pointers(problem) == ["#/codes/0"]
    assert [c["id"] for c in claims_of(client, shop.a.headers)] == [claim["id"]]
    assert balance(client, shop.a.headers) == "1000.00"


@pytest.mark.parametrize(
    ("attempted", "pointer"),
    [
        (-timedelta(hours=1), "#/redemption/attempted_at"),  # before the delivery
        (timedelta(hours=1), "#/redemption/attempted_at"),  # in the future
    ],
)
def test_an_impossible_redemption_time_is_refused(
    client: httpx.Client, shop: factories.Shop, attempted: timedelta, pointer: str
) -> None:
    order_id, [code] = place(client, shop.a.headers)
    body = claim_body(order_id, code)
    body["redemption"]["attempted_at"] = (datetime.now(UTC) + attempted).isoformat()
    problem = assert_problem(_file(client, shop.a.headers, body), 422, "validation-error")
    assert _pointers(problem) == [pointer]
    assert_problem(_file(client, shop.a.headers, body, dry_run=True), 422, "validation-error")
    _assert_untouched(client, shop.a.headers)


def test_a_malformed_error_code_is_refused_at_its_field(
    client: httpx.Client, shop: factories.Shop
) -> None:
    order_id, [code] = place(client, shop.a.headers)
    per_code = claim_body(order_id, {"code": code, "error_code": "WS-37432"})
    problem = assert_problem(_file(client, shop.a.headers, per_code), 422, "validation-error")
    assert _pointers(problem) == ["#/codes/0/error_code"]
    whole = claim_body(order_id, code, error_code="not an error")
    problem = assert_problem(_file(client, shop.a.headers, whole), 422, "validation-error")
    assert "WS-37432-9" in problem["detail"]
    _assert_untouched(client, shop.a.headers)
    # The claim's error_code is a top-level field of the body: the pointer must name it.
    assert _pointers(problem) == ["#/error_code"]


def _without(body: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != key}


def test_malformed_claims_are_refused_and_change_nothing(
    client: httpx.Client, shop: factories.Shop
) -> None:
    order_id, [code] = place(client, shop.a.headers)
    good = claim_body(order_id, code)
    redemption = good["redemption"]
    naive = datetime.now(UTC).replace(tzinfo=None).isoformat()
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("unknown problem", {**good, "problem": "stolen"}, "#/problem"),
        ("unknown per-code problem", {**good, "codes": [{"code": code, "problem": "x"}]}, ""),
        (
            "attempt without a time zone",
            {**good, "redemption": {**redemption, "attempted_at": naive}},
            "#/redemption/attempted_at",
        ),
        ("unknown field", {**good, "refund_to": "elsewhere"}, "#/refund_to"),
        (
            "unknown redemption field",
            {**good, "redemption": {**redemption, "x": 1}},
            "#/redemption/x",
        ),
        ("unknown code field", {**good, "codes": [{"code": code, "price": "0"}]}, ""),
        ("empty codes", {**good, "codes": []}, "#/codes"),
        ("no codes", _without(good, "codes"), "#/codes"),
        ("no order", _without(good, "order_id"), "#/order_id"),
        ("unknown remedy", {**good, "remedy": "cash"}, "#/remedy"),
        (
            "region not two letters",
            {**good, "redemption": {**redemption, "account_region": "USA"}},
            "#/redemption/account_region",
        ),
        (
            "region not letters",
            {**good, "redemption": {**redemption, "account_region": "1!"}},
            "#/redemption/account_region",
        ),
        ("malformed code", {**good, "codes": ["not-a-code"]}, "#/codes/0/code"),
        ("codes not a list", {**good, "codes": code}, "#/codes"),
        ("body not an object", [good], ""),  # type: ignore[list-item]
    ]
    for name, body, pointer in cases:
        response = client.post(CLAIMS, json=body, headers=shop.a.headers)
        problem = assert_problem(response, 422, "validation-error")
        if pointer:
            assert any(p.startswith(pointer) for p in _pointers(problem)), (name, problem)
    for raw in (b'{"order_id": ', b"", b"\xff\xfe", b"not json"):
        response = client.post(
            CLAIMS,
            content=raw,
            headers={**shop.a.headers, "Content-Type": "application/json"},
        )
        assert_problem(response, 400, "malformed-request")
    _assert_untouched(client, shop.a.headers)


# ---------------------------------------------------------------------------------------------
# Partner isolation and listing


def test_another_partner_cannot_see_or_touch_a_claim(
    client: httpx.Client, shop: factories.Shop
) -> None:
    order_id, [code] = place(client, shop.a.headers)
    claim = _filed(client, shop.a.headers, claim_body(order_id, code))
    url = f"{CLAIMS}/{claim['id']}"
    never_filed = f"clm_{secrets.token_hex(10)}"
    attempts: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", "", None),
        ("POST", "/cancel", None),
        ("POST", "/evidence", {"error_code": "WS-37432-9"}),
        ("POST", "/remedy", {"remedy": "refund"}),
    ]
    for method, suffix, body in attempts:
        foreign = client.request(method, url + suffix, json=body, headers=shop.b.headers)
        problem = assert_problem(foreign, 404, "claim-not-found")
        missing = client.request(
            method, f"{CLAIMS}/{never_filed}{suffix}", json=body, headers=shop.b.headers
        )
        other = assert_problem(missing, 404, "claim-not-found")
        assert problem["detail"].replace(claim["id"], "ID") == other["detail"].replace(
            never_filed, "ID"
        )
    assert claims_of(client, shop.b.headers) == []
    assert _get(client, shop.a.headers, claim["id"]) == claim  # nothing changed
    assert balance(client, shop.b.headers) == "1000.00"


@pytest.mark.parametrize(
    "claim_id",
    [
        "nope",
        "clm_",
        "clm_" + "g" * 20,
        "CLM_" + "a" * 20,
        "clm_" + "a" * 21,
        "clm_" + "A" * 20,
        "clm_" + "a" * 19 + "%0A",
        "%20clm_" + "a" * 20,
    ],
)
def test_malformed_claim_ids_are_not_found(
    client: httpx.Client, shop: factories.Shop, claim_id: str
) -> None:
    assert_problem(
        client.get(f"{CLAIMS}/{claim_id}", headers=shop.a.headers), 404, "claim-not-found"
    )
    assert_problem(
        client.post(f"{CLAIMS}/{claim_id}/cancel", headers=shop.a.headers), 404, "not-found"
    )


def test_the_list_is_paginated_newest_first_and_filtered_by_status(
    client: httpx.Client, shop: factories.Shop
) -> None:
    order_id, codes = place(client, shop.a.headers, quantity=3)
    ids = [_filed(client, shop.a.headers, claim_body(order_id, code))["id"] for code in codes]
    assert client.post(f"{CLAIMS}/{ids[1]}/cancel", headers=shop.a.headers).status_code == 200

    def listed(**params: str) -> dict[str, Any]:
        response = client.get(CLAIMS, params=params, headers=shop.a.headers)
        assert response.status_code == 200, response.text
        page: dict[str, Any] = response.json()
        return page

    first = listed(limit="2")
    assert [c["id"] for c in first["data"]] == [ids[2], ids[1]]
    assert first["next_cursor"] == ids[1]
    second = listed(limit="2", cursor=first["next_cursor"])
    assert [c["id"] for c in second["data"]] == [ids[0]]
    assert second["next_cursor"] is None
    everything = listed()
    assert [c["id"] for c in everything["data"]] == ids[::-1]
    assert everything["next_cursor"] is None
    assert [c["id"] for c in listed(status="cancelled")["data"]] == [ids[1]]
    assert [c["id"] for c in listed(status="submitted")["data"]] == [ids[2], ids[0]]
    assert [c["id"] for c in listed(status="submitted", limit="1", cursor=ids[2])["data"]] == [
        ids[0]
    ]
    assert listed(status="resolved")["data"] == []
    assert claims_of(client, shop.b.headers) == []

    for cursor in ("garbage", f"clm_{secrets.token_hex(10)}", "ord_" + "a" * 20):
        response = client.get(CLAIMS, params={"cursor": cursor}, headers=shop.a.headers)
        assert_problem(response, 400, "invalid-cursor")
    # A's claim id is no cursor for B.
    response = client.get(CLAIMS, params={"cursor": ids[2]}, headers=shop.b.headers)
    assert_problem(response, 400, "invalid-cursor")
    for params in ({"status": "open"}, {"limit": "0"}, {"limit": "201"}):
        response = client.get(CLAIMS, params=params, headers=shop.a.headers)
        assert_problem(response, 422, "validation-error")


# ---------------------------------------------------------------------------------------------
# Evidence and the lifecycle, with the customer message of each state


def test_missing_evidence_asked_for_and_supplied(
    client: httpx.Client, db: Database, shop: factories.Shop
) -> None:
    order_id, [code] = place(client, shop.a.headers)
    body = _without(claim_body(order_id, code, redemption={}), "error_code")
    claim = _filed(client, shop.a.headers, body)
    [judged] = claim["codes"]
    assert judged["verdict"] == "needs_evidence"
    assert judged["rule"] is None
    assert judged["missing"] == ["error_evidence", "account_region", "attempted_at"]
    assert claim["customer_message"] == RECEIVED

    reason = "Please send the PSN error code, the account region and when it was tried."
    asked = client.post(
        f"/api/v1/admin/claims/{claim['id']}/request-info",
        json={"reason": reason},
        headers=operator_headers(db),
    )
    assert asked.status_code == 200, asked.text
    waiting = _get(client, shop.a.headers, claim["id"])
    assert waiting["status"] == "needs_info"
    assert waiting["info_request"] == reason
    assert waiting["sla"]["due_at"] is None
    assert waiting["sla"]["overdue"] is False
    labels = V1_1.evidence_labels
    wanted = [labels["account_region"], labels["attempted_at"], labels["error_evidence"]]
    assert waiting["customer_message"] == f"To check your code we need {' and '.join(wanted)}."
    assert "PlayStation error code" in waiting["customer_message"]

    answered = client.post(
        f"{CLAIMS}/{claim['id']}/evidence",
        json={
            "error_code": "WS-37432-9",
            "redemption": {
                "account_region": "us",
                "attempted_at": datetime.now(UTC).isoformat(),
            },
        },
        headers=shop.a.headers,
    )
    assert answered.status_code == 200, answered.text
    back = answered.json()
    assert back["status"] == "submitted"
    assert back["error_code"] == "WS-37432-9"
    assert back["redemption"]["account_region"] == "US"
    assert _at(back["sla"]["triage_due_at"]) > _at(claim["sla"]["triage_due_at"])
    assert _at(back["sla"]["due_at"]) == _at(back["sla"]["triage_due_at"])
    assert _at(back["sla"]["triage_due_at"]) > datetime.now(UTC) + timedelta(hours=23)
    assert back["submitted_at"] == claim["submitted_at"]  # the window is measured to filing
    [judged] = back["codes"]
    assert (judged["verdict"], judged["rule"], judged["missing"]) == (
        "eligible",
        "covered.invalid",
        [],
    )
    assert back["customer_message"] == RECEIVED
    assert _get(client, shop.a.headers, claim["id"]) == back


def test_evidence_with_an_impossible_time_is_refused_and_changes_nothing(
    client: httpx.Client, shop: factories.Shop
) -> None:
    order_id, [code] = place(client, shop.a.headers)
    claim = _filed(client, shop.a.headers, _without(claim_body(order_id, code), "error_code"))
    for evidence in (
        {"redemption": {"attempted_at": (datetime.now(UTC) - timedelta(days=1)).isoformat()}},
        {"redemption": {"attempted_at": "2026-01-01T00:00:00"}},
        {"error_code": "WS-37432-9", "evidence": "extra"},
        {"codes": [{"code": factories.random_code(), "error_code": "WS-37432-9"}]},
    ):
        response = client.post(
            f"{CLAIMS}/{claim['id']}/evidence", json=evidence, headers=shop.a.headers
        )
        assert response.status_code == 422, (evidence, response.text)
    assert _get(client, shop.a.headers, claim["id"]) == claim


def test_cancel_frees_the_code_and_a_decided_claim_cannot_be_cancelled(
    client: httpx.Client, db: Database, shop: factories.Shop
) -> None:
    order_id, [code] = place(client, shop.a.headers)
    claim = _filed(client, shop.a.headers, claim_body(order_id, code))
    cancelled = client.post(f"{CLAIMS}/{claim['id']}/cancel", headers=shop.a.headers)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["customer_message"] == WITHDRAWN
    assert cancelled.json()["sla"]["due_at"] is None
    again = client.post(f"{CLAIMS}/{claim['id']}/cancel", headers=shop.a.headers)
    assert_problem(again, 409, "claim-state-conflict")
    evidence = client.post(
        f"{CLAIMS}/{claim['id']}/evidence",
        json={"error_code": "WS-37432-9"},
        headers=shop.a.headers,
    )
    assert_problem(evidence, 409, "claim-state-conflict")

    refiled = _filed(client, shop.a.headers, claim_body(order_id, code))
    assert refiled["id"] != claim["id"]
    resolved = approve(client, operator_headers(db), refiled["id"])
    assert resolved["status"] == "resolved"
    seen = _get(client, shop.a.headers, refiled["id"])
    assert seen["customer_message"] == REPLACED
    assert seen["replacement_order_ids"] == resolved["replacement_order_ids"]
    assert_problem(
        client.post(f"{CLAIMS}/{refiled['id']}/cancel", headers=shop.a.headers),
        409,
        "claim-state-conflict",
    )
    assert _get(client, shop.a.headers, refiled["id"]) == seen
    statuses = {c["id"]: c["status"] for c in claims_of(client, shop.a.headers)}
    assert statuses == {claim["id"]: "cancelled", refiled["id"]: "resolved"}


def test_remedy_changed_before_approval_pays_a_refund(
    client: httpx.Client, db: Database, shop: factories.Shop
) -> None:
    order_id, [code] = place(client, shop.a.headers)
    claim = _filed(client, shop.a.headers, claim_body(order_id, code))
    assert claim["remedy"] == "replacement"
    changed = client.post(
        f"{CLAIMS}/{claim['id']}/remedy", json={"remedy": "refund"}, headers=shop.a.headers
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["remedy"] == "refund"
    assert changed.json()["status"] == "submitted"
    assert balance(client, shop.a.headers) == PAID_ONE
    for bad in ({"remedy": "cash"}, {}, {"remedy": "refund", "to": "x"}):
        response = client.post(f"{CLAIMS}/{claim['id']}/remedy", json=bad, headers=shop.a.headers)
        assert_problem(response, 422, "validation-error")

    resolved = approve(client, operator_headers(db), claim["id"])
    assert resolved["status"] == "resolved"
    assert resolved["replacement_order_ids"] == []
    [judged] = resolved["codes"]
    assert judged["remedy"]["kind"] == "refund"
    assert judged["remedy"]["refunded"] == {"amount": "46.50", "currency": "USD"}
    assert balance(client, shop.a.headers) == "1000.00"
    seen = _get(client, shop.a.headers, claim["id"])
    assert seen["customer_message"] == REFUNDED
    late = client.post(
        f"{CLAIMS}/{claim['id']}/remedy", json={"remedy": "replacement"}, headers=shop.a.headers
    )
    assert_problem(late, 409, "claim-state-conflict")
    assert balance(client, shop.a.headers) == "1000.00"


def test_replacement_waiting_for_stock_can_switch_to_a_refund(
    client: httpx.Client, db: Database, vault: Vault, shop: factories.Shop
) -> None:
    sku = factories.add_product(db, sku="psn-us-10", face="10", price="9.30")
    factories.load_codes(db, vault, sku, 1)
    order_id, [code] = place(client, shop.a.headers, sku=sku)
    assert balance(client, shop.a.headers) == "990.70"
    claim = _filed(client, shop.a.headers, claim_body(order_id, code))
    approved = approve(client, operator_headers(db), claim["id"])
    assert approved["status"] == "approved"  # no psn-us-10 left to replace it with
    assert approved["codes"][0]["remedy"]["state"] == "waiting"
    seen = _get(client, shop.a.headers, claim["id"])
    assert seen["customer_message"] == REPLACEMENT_WAITING
    assert seen["sla"]["remedy_due_at"] is not None
    assert _at(seen["sla"]["due_at"]) == _at(seen["sla"]["remedy_due_at"])
    assert_problem(
        client.post(f"{CLAIMS}/{claim['id']}/cancel", headers=shop.a.headers),
        409,
        "claim-state-conflict",
    )
    assert_problem(
        client.post(
            f"{CLAIMS}/{claim['id']}/remedy", json={"remedy": "replacement"}, headers=shop.a.headers
        ),
        409,
        "claim-state-conflict",
    )
    assert _get(client, shop.a.headers, claim["id"]) == seen
    refunded = client.post(
        f"{CLAIMS}/{claim['id']}/remedy", json={"remedy": "refund"}, headers=shop.a.headers
    )
    assert refunded.status_code == 200, refunded.text
    assert refunded.json()["status"] == "resolved"
    assert refunded.json()["codes"][0]["remedy"]["refunded"] == {
        "amount": "9.30",
        "currency": "USD",
    }
    assert refunded.json()["customer_message"] == REFUNDED
    assert balance(client, shop.a.headers) == "1000.00"


def test_rejected_claim_tells_the_customer_why_in_their_terms(
    client: httpx.Client, db: Database, shop: factories.Shop
) -> None:
    order_id, [code] = place(client, shop.a.headers)
    claim = _filed(client, shop.a.headers, claim_body(order_id, code))
    internal = "Found the code in a public Discord screenshot"
    rejected = client.post(
        f"/api/v1/admin/claims/{claim['id']}/reject",
        json={"reason": internal, "rule": "not_covered.public_exposure"},
        headers=operator_headers(db),
    )
    assert rejected.status_code == 200, rejected.text
    response = client.get(f"{CLAIMS}/{claim['id']}", headers=shop.a.headers)
    seen = response.json()
    assert seen["status"] == "rejected"
    assert seen["decision_rule"] == "not_covered.public_exposure"
    expected = V1_1.rule("not_covered.public_exposure").customer_message
    assert expected in seen["customer_message"]
    assert seen["customer_message"] == f"We could not approve your report. {expected}"
    assert seen["sla"]["due_at"] is None
    assert internal not in response.text  # the operator's own reason stays internal
    assert "decision_reason" not in seen
    assert_problem(
        client.post(f"{CLAIMS}/{claim['id']}/cancel", headers=shop.a.headers),
        409,
        "claim-state-conflict",
    )
    assert balance(client, shop.a.headers) == PAID_ONE


def test_malformed_error_code_in_added_evidence_is_refused_at_its_field(
    client: httpx.Client, shop: factories.Shop
) -> None:
    order_id, [code] = place(client, shop.a.headers)
    claim = _filed(client, shop.a.headers, _without(claim_body(order_id, code), "error_code"))
    response = client.post(
        f"{CLAIMS}/{claim['id']}/evidence", json={"error_code": "WS-1234"}, headers=shop.a.headers
    )
    problem = assert_problem(response, 422, "validation-error")
    assert "WS-37432-9" in problem["detail"]
    assert _get(client, shop.a.headers, claim["id"]) == claim
    # The body's field is the top-level error_code; the attempt time has nothing to do with it.
    assert _pointers(problem) == ["#/error_code"]


def test_ps5_error_codes_and_a_little_clock_skew_are_accepted(
    client: httpx.Client, shop: factories.Shop
) -> None:
    order_id, codes = place(client, shop.a.headers, 2)
    soon = (datetime.now(UTC) + timedelta(minutes=2)).isoformat()  # the customer's clock is fast
    body = claim_body(order_id, *codes, error_code="CE-108255-1")
    body["redemption"]["attempted_at"] = soon
    filed = _filed(client, shop.a.headers, body)
    assert [c["verdict"] for c in filed["codes"]] == ["eligible", "eligible"]
    evidence = client.post(f"{CLAIMS}/{filed['id']}/evidence", json={}, headers=shop.a.headers)
    assert_problem(evidence, 422, "validation-error")  # nothing to add


def test_the_refund_reference_names_the_claim_and_position_only(
    client: httpx.Client, db: Database, shop: factories.Shop
) -> None:
    order_id, [code] = place(client, shop.a.headers)
    claim = _filed(client, shop.a.headers, claim_body(order_id, code, remedy="refund"))
    approve(client, operator_headers(db), claim["id"])
    ledger = client.get("/api/v1/ledger", headers=shop.a.headers).json()["data"]
    assert ledger[-1]["reference"] == f"refund:{claim['id']}:1"


def test_revealed_codes_say_when_a_claim_voided_them_and_replacements_are_not_refunded(
    client: httpx.Client, db: Database, shop: factories.Shop
) -> None:
    order_id, [code] = place(client, shop.a.headers)
    claim = _filed(client, shop.a.headers, claim_body(order_id, code))
    resolved = approve(client, operator_headers(db), claim["id"])
    codes = client.get(f"/api/v1/orders/{order_id}/codes", headers=shop.a.headers).json()
    assert [c["state"] for c in codes["codes"]] == ["voided"]
    [replacement] = resolved["replacement_order_ids"]
    new = client.get(f"/api/v1/orders/{replacement}/codes", headers=shop.a.headers).json()
    assert [c["state"] for c in new["codes"]] == ["delivered"]
    refused = _file(
        client, shop.a.headers, claim_body(replacement, new["codes"][0]["code"], remedy="refund")
    )
    assert_problem(refused, 422, "validation-error")
    assert refused.json()["errors"][0]["pointer"] == "#/remedy"
    _filed(client, shop.a.headers, claim_body(replacement, new["codes"][0]["code"]))
