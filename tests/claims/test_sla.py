"""SLA clocks stored on claims (seed 000, section 4), on both databases: triage within 24 hours
of submission, the remedy within 48 hours of approval, and an upstream dispute within 7 business
days, skipping weekends and the operator's holidays (CODESHELF_HOLIDAYS)."""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from codeshelf.kit.db import Database
from codeshelf.kit.settings import Settings
from codeshelf.kit.vault import Vault
from tests.fixtures import factories
from tests.fixtures.claims import (
    OperatorKeyHandle,
    backdate_delivery,
    claim_body,
    cli_time,
    file_claim,
    issue_operator_key,
    load_claim,
    place,
    snapshot,
)
from tests.fixtures.servers import serve

TRIAGE = timedelta(hours=24)
REMEDY = timedelta(hours=48)
UPSTREAM_BUSINESS_DAYS = 7


def business_days_later(start: datetime, days: int, holidays: Collection[date]) -> datetime:
    """The expected deadline, restated from the policy: count ``days`` days after ``start``'s
    date that are neither Saturday, Sunday nor a holiday; keep the time of day."""
    day = start.date()
    counted = 0
    while counted < days:
        day += timedelta(days=1)
        if day.isoweekday() not in (6, 7) and day not in holidays:
            counted += 1
    return datetime.combine(day, start.timetz())


def test_the_expected_deadline_restates_the_policy() -> None:
    friday = datetime(2026, 11, 20, 10, 30, tzinfo=UTC)
    assert business_days_later(friday, 7, ()) == datetime(2026, 12, 1, 10, 30, tzinfo=UTC)
    thanksgiving = date(2026, 11, 26)
    assert business_days_later(friday, 7, {thanksgiving}) == datetime(
        2026, 12, 2, 10, 30, tzinfo=UTC
    )
    saturday = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    assert business_days_later(saturday, 2, ()) == datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def a_weekday_inside_the_span() -> date:
    """Three business days from today: inside the 7-business-day span of an escalation made
    today (or tomorrow, should the test cross midnight)."""
    return business_days_later(datetime.now(UTC), 3, ()).date()


def submitted(client: httpx.Client, shop: factories.Shop) -> str:
    order_id, [code] = place(client, shop.a.headers)
    return file_claim(client, shop.a.headers, claim_body(order_id, code, remedy="refund"))


def escalate(http: httpx.Client, operator: OperatorKeyHandle, claim_id: str) -> dict[str, Any]:
    response = http.post(
        f"/api/v1/admin/claims/{claim_id}/escalate",
        json={"reason": "ask the supplier"},
        headers=operator.headers,
    )
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


# ---------------------------------------------------------------------------------------------
# Upstream: 7 business days


def test_escalation_is_due_seven_business_days_later(
    client: httpx.Client, db: Database, shop: factories.Shop
) -> None:
    alice = issue_operator_key(db)
    claim_id = submitted(client, shop)
    shown = escalate(client, alice, claim_id)
    claim = load_claim(db, claim_id)
    assert claim.escalated_at is not None and claim.upstream_due_at is not None
    expected = business_days_later(claim.escalated_at, UPSTREAM_BUSINESS_DAYS, ())
    assert claim.upstream_due_at == expected
    assert claim.upstream_due_at.isoweekday() < 6
    assert claim.upstream_due_at.time() == claim.escalated_at.time()
    assert claim.due_at == claim.upstream_due_at
    assert datetime.fromisoformat(shown["sla"]["upstream_due_at"]) == expected
    assert datetime.fromisoformat(shown["sla"]["due_at"]) == expected
    assert shown["sla"]["overdue"] is False
    assert "7 business days" in shown["customer_message"]


def test_escalation_by_cli_skips_the_holidays_of_its_settings(
    client: httpx.Client, db: Database, shop: factories.Shop, database_url: str
) -> None:
    holiday = a_weekday_inside_the_span()
    # A Saturday in the list changes nothing: weekends are skipped anyway.
    saturday = holiday + timedelta(days=(6 - holiday.isoweekday()) % 7 or 7)
    assert saturday.isoweekday() == 6
    plain, with_holiday = submitted(client, shop), submitted(client, shop)

    result = factories.run_cli(
        database_url, "claims", "escalate", plain, "--reason", "check", "--json"
    )
    assert result.exit_code == 0, result.stderr
    claim = load_claim(db, plain)
    assert claim.escalated_at is not None
    assert claim.upstream_due_at == business_days_later(claim.escalated_at, 7, ())

    result = factories.run_cli(
        database_url,
        "claims",
        "escalate",
        with_holiday,
        "--reason",
        "check",
        "--json",
        env={"CODESHELF_HOLIDAYS": f" {holiday.isoformat()}, {saturday.isoformat()},"},
    )
    assert result.exit_code == 0, result.stderr
    shown = json.loads(result.stdout)
    claim = load_claim(db, with_holiday)
    assert claim.escalated_at is not None
    expected = business_days_later(claim.escalated_at, 7, {holiday})
    assert expected != business_days_later(claim.escalated_at, 7, ())
    assert claim.upstream_due_at == expected
    assert datetime.fromisoformat(shown["sla"]["upstream_due_at"]) == expected
    assert datetime.fromisoformat(shown["sla"]["due_at"]) == expected


def test_escalation_by_api_skips_the_servers_holidays(
    settings: Settings, db: Database, shop: factories.Shop
) -> None:
    holiday = a_weekday_inside_the_span()
    alice = issue_operator_key(db)
    configured = settings.model_copy(update={"holidays": holiday.isoformat()})
    assert configured.holiday_dates() == {holiday}
    with serve(configured, db) as http:
        claim_id = submitted(http, shop)
        shown = escalate(http, alice, claim_id)
    claim = load_claim(db, claim_id)
    assert claim.escalated_at is not None
    expected = business_days_later(claim.escalated_at, 7, {holiday})
    plain = business_days_later(claim.escalated_at, 7, ())
    # One business day later: the next day, or Monday after a Friday.
    assert expected - plain == timedelta(days=3 if plain.isoweekday() == 5 else 1)
    assert claim.upstream_due_at == expected
    assert datetime.fromisoformat(shown["sla"]["upstream_due_at"]) == expected


# ---------------------------------------------------------------------------------------------
# Triage: 24 hours; remedy: 48 hours


def test_filing_starts_the_24_hour_triage_clock(
    client: httpx.Client, db: Database, shop: factories.Shop, database_url: str
) -> None:
    alice = issue_operator_key(db)
    by_api = submitted(client, shop)
    claim = load_claim(db, by_api)
    assert claim.triage_due_at == claim.submitted_at + TRIAGE
    assert claim.due_at == claim.triage_due_at
    seen = client.get(f"/api/v1/claims/{by_api}", headers=shop.a.headers).json()
    assert datetime.fromisoformat(seen["sla"]["triage_due_at"]) == claim.triage_due_at
    assert datetime.fromisoformat(seen["submitted_at"]) == claim.submitted_at
    assert seen["sla"]["remedy_due_at"] is None and seen["sla"]["upstream_due_at"] is None

    # Filed by the operator: the same clock.
    order_id, [code] = place(client, shop.b.headers)
    backdate_delivery(db, order_id, timedelta(minutes=10))
    result = factories.run_cli(
        database_url,
        "claims",
        "file",
        "--partner",
        shop.b.id,
        "--order",
        order_id,
        "--code",
        code,
        "--problem",
        "invalid",
        "--error-code",
        "WS-37432-9",
        "--account-region",
        "US",
        "--attempted-at",
        cli_time(datetime.now(UTC) - timedelta(minutes=1)),
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    by_operator = load_claim(db, json.loads(result.stdout)["id"])
    assert by_operator.triage_due_at == by_operator.submitted_at + TRIAGE

    # Asking for information stops the clock; the partner's answer starts a fresh one.
    asked = client.post(
        f"/api/v1/admin/claims/{by_api}/request-info",
        json={"reason": "a screenshot"},
        headers=alice.headers,
    )
    assert asked.status_code == 200, asked.text
    assert load_claim(db, by_api).due_at is None
    answered = client.post(
        f"/api/v1/claims/{by_api}/evidence", json={"note": "see above"}, headers=shop.a.headers
    )
    assert answered.status_code == 200, answered.text
    assert answered.json()["status"] == "submitted"
    again = load_claim(db, by_api)
    assert again.triage_due_at > claim.triage_due_at
    assert again.due_at == again.triage_due_at
    assert again.submitted_at == claim.submitted_at  # the claim window is measured to filing


def test_approval_starts_the_48_hour_remedy_clock(
    client: httpx.Client, db: Database, vault: Vault
) -> None:
    shop = factories.make_shop(db, vault, stock_count=1)
    alice = issue_operator_key(db)
    order_id, [code] = place(client, shop.a.headers)
    waiting = file_claim(client, shop.a.headers, claim_body(order_id, code, remedy="replacement"))
    response = client.post(
        f"/api/v1/admin/claims/{waiting}/approve", json={"reason": "ok"}, headers=alice.headers
    )
    assert response.status_code == 200, response.text
    shown = response.json()
    assert shown["status"] == "approved"  # no stock: the replacement waits
    claim = load_claim(db, waiting)
    assert claim.decided_at is not None
    assert claim.remedy_due_at == claim.decided_at + REMEDY
    assert claim.due_at == claim.remedy_due_at
    assert datetime.fromisoformat(shown["sla"]["remedy_due_at"]) == claim.remedy_due_at
    assert datetime.fromisoformat(shown["sla"]["due_at"]) == claim.remedy_due_at
    # Once resolved (here: switched to a refund), no deadline is left running.
    switched = client.post(
        f"/api/v1/claims/{waiting}/remedy", json={"remedy": "refund"}, headers=shop.a.headers
    )
    assert switched.status_code == 200 and switched.json()["status"] == "resolved"
    resolved = load_claim(db, waiting)
    assert resolved.due_at is None and resolved.remedy_due_at == claim.remedy_due_at


# ---------------------------------------------------------------------------------------------
# The holiday setting


@pytest.mark.parametrize("bad", ["2026-02-30", "christmas", "2026-12-25,26-12-2026", "2026/12/25"])
def test_a_bad_holiday_is_refused_by_the_settings(
    bad: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValidationError) as raised:
        Settings(holidays=bad, _env_file=None)
    assert "holiday" in str(raised.value)
    monkeypatch.setenv("CODESHELF_HOLIDAYS", bad)
    with pytest.raises(ValidationError):
        Settings(_env_file=None)


def test_good_holiday_lists_are_read() -> None:
    settings = Settings(holidays=" 2026-12-25 , 2027-01-01,, ", _env_file=None)
    assert settings.holiday_dates() == {date(2026, 12, 25), date(2027, 1, 1)}
    assert Settings(_env_file=None).holiday_dates() == frozenset()


def test_a_cli_with_a_bad_holiday_changes_nothing(
    client: httpx.Client, db: Database, shop: factories.Shop, database_url: str
) -> None:
    claim_id = submitted(client, shop)
    before = snapshot(db, claim_id)
    result = factories.run_cli(
        database_url,
        "claims",
        "escalate",
        claim_id,
        "--reason",
        "check",
        env={"CODESHELF_HOLIDAYS": "christmas"},
    )
    assert result.exit_code == 1
    assert "error: invalid settings: CODESHELF_HOLIDAYS" in result.stderr
    assert "christmas" in result.stderr
    assert snapshot(db, claim_id) == before
