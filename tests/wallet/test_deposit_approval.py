"""Four eyes on deposits (the wallet service): above its currency's threshold a deposit waits
for a second person; at or below it, or in a currency with none, it is credited at once; the
one who asked never decides; a request is decided once; a reference names one deposit."""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from codeshelf.audit.models import AuditEvent
from codeshelf.invariants import check_all, wallet_checks
from codeshelf.kit.clock import utcnow
from codeshelf.kit.db import Database
from codeshelf.kit.errors import InvalidInputError
from codeshelf.kit.money import Money, parse_per_currency
from codeshelf.kit.settings import Settings
from codeshelf.partners import service as partners
from codeshelf.wallet import service as wallet
from codeshelf.wallet.models import DepositRequest, LedgerTransaction, Posting
from codeshelf.wallet.service import moves
from tests.fixtures import factories
from tests.fixtures.http import second_while_first_is_open

THRESHOLDS = parse_per_currency("USD 5000.00,JPY 500000")
ALICE, BOB = "staff:mbr_alice", "staff:mbr_bob"
_references = itertools.count()


def ask(
    db: Database, partner_id: str, amount: str, currency: str = "USD", **kw: str
) -> wallet.DepositOutcome:
    reference = kw.get("reference") or f"WIRE-{next(_references)}"
    with db.session() as session:
        partner = partners.get_partner(session, partner_id)
        money = Money.parse(amount, currency)
        actor = kw.get("actor", ALICE)
        return wallet.ask_deposit(session, partner, money, reference, actor, THRESHOLDS, utcnow())


def approve(db: Database, request_id: str, actor: str = BOB) -> wallet.DepositOutcome:
    with db.session() as session:
        return wallet.approve_deposit(session, request_id, actor, utcnow())


def decline(db: Database, request_id: str, actor: str = BOB, note: str = "no such wire") -> None:
    with db.session() as session:
        wallet.decline_deposit(session, request_id, actor, note, utcnow())


def balance(db: Database, partner_id: str) -> list[str]:
    with db.read_session() as session:
        return [
            str(m) for m in wallet.balances(session, partners.get_partner(session, partner_id).id)
        ]


def deposits_posted(db: Database) -> int:
    with db.read_session() as session:
        query = select(func.count()).where(LedgerTransaction.kind == "deposit")
        return session.scalar(query) or 0


def request_of(outcome: wallet.DepositOutcome) -> wallet.RequestedDeposit:
    assert outcome.request is not None
    return outcome.request


# --- The setting ---------------------------------------------------------------------------------


def test_the_setting_gives_a_threshold_per_currency() -> None:
    configured = Settings(_env_file=None, deposit_approval_over=" USD 5000.00, 300 eur ,JPY 0")  # type: ignore[call-arg]
    assert configured.deposit_thresholds() == {
        "USD": Money(500000, "USD"),
        "EUR": Money(30000, "EUR"),
        "JPY": Money(0, "JPY"),
    }
    assert Settings(_env_file=None).deposit_thresholds() == {}  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("raw", "said"),
    [
        ("USD", "is not a currency and an amount"),
        ("USD 5000.001", "decimal places"),
        ("XXQ 10", "unknown currency"),
        ("USD -1", "may not be negative"),
        ("USD 1,usd 2", "USD is named twice"),
        ("USD five", "not a decimal amount"),
    ],
)
def test_a_bad_setting_is_refused_saying_why(raw: str, said: str) -> None:
    with pytest.raises(ValidationError, match=said) as caught:
        Settings(_env_file=None, deposit_approval_over=raw)  # type: ignore[call-arg]
    assert caught.value.errors()[0]["loc"] == ("deposit_approval_over",)


# --- Direct or pending ---------------------------------------------------------------------------


def test_at_the_threshold_it_is_credited_at_once_and_above_it_waits(
    db: Database, shop: factories.Shop
) -> None:
    at = ask(db, shop.a.id, "5000.00")
    assert not at.pending and at.created and at.request is None
    assert at.credited is not None and at.credited.balance == Money.parse("6000.00", "USD")

    above = ask(db, shop.a.id, "5000.01")
    assert above.pending and above.created and above.credited is None
    request = request_of(above)
    assert (request.status, request.amount, request.requested_by) == (
        "pending",
        Money.parse("5000.01", "USD"),
        ALICE,
    )
    assert request.partner_id == shop.a.id and request.transaction_id is None
    assert balance(db, shop.a.id) == ["6000.00 USD"]  # nothing credited for the request
    with db.read_session() as session:
        assert [r.id for r in wallet.pending_deposits(session)] == [request.id]


def test_each_currency_has_its_own_threshold_and_one_not_named_needs_nobody(
    db: Database, shop: factories.Shop
) -> None:
    assert ask(db, shop.a.id, "500000", "JPY").credited is not None
    assert ask(db, shop.a.id, "500001", "JPY").pending
    # EUR is not in the setting: however large, no second person.
    assert ask(db, shop.a.id, "9000000.00", "EUR").credited is not None
    assert balance(db, shop.a.id) == ["9000000.00 EUR", "500000 JPY", "1000.00 USD"]


@given(amount=st.integers(1, 10**12), threshold=st.integers(0, 10**12))
def test_only_amounts_above_the_threshold_need_a_second_person(amount: int, threshold: int) -> None:
    money, limits = Money(amount, "USD"), {"USD": Money(threshold, "USD")}
    assert wallet.needs_second_person(money, limits) is (amount > threshold)
    assert wallet.needs_second_person(Money(amount, "EUR"), limits) is False


# --- References ----------------------------------------------------------------------------------


def test_a_pending_reference_cannot_be_deposited_directly_and_asking_again_repeats(
    db: Database, shop: factories.Shop
) -> None:
    request = request_of(ask(db, shop.a.id, "7000.00", reference="WIRE-7"))
    with db.session() as session, pytest.raises(wallet.DepositConflictError, match=request.id):
        wallet.deposit(
            session, partners.get_partner(session, shop.a.id), Money(100, "USD"), "WIRE-7"
        )
    again = ask(db, shop.a.id, "7000.00", reference="WIRE-7", actor=BOB)
    assert again.pending and not again.created and request_of(again).id == request.id
    for partner, amount in ((shop.a.id, "7000.01"), (shop.a.id, "10.00"), (shop.b.id, "7000.00")):
        with pytest.raises(wallet.DepositConflictError, match="WIRE-7"):
            ask(db, partner, amount, reference="WIRE-7")
    with db.read_session() as session:
        assert session.scalar(select(func.count()).select_from(DepositRequest)) == 1
    assert deposits_posted(db) == 2  # the shop's two


def test_a_deposited_reference_cannot_be_filed_as_a_request(
    db: Database, shop: factories.Shop
) -> None:
    ask(db, shop.a.id, "100.00", reference="WIRE-8")
    with pytest.raises(wallet.DepositConflictError, match="WIRE-8"):
        ask(db, shop.a.id, "8000.00", reference="WIRE-8")
    # The same deposit again is the same deposit, even if it would now need a second person.
    with db.session() as session:
        partner = partners.get_partner(session, shop.a.id)
        limits = {"USD": Money(1, "USD")}
        repeat = wallet.ask_deposit(
            session, partner, Money(10000, "USD"), "WIRE-8", ALICE, limits, utcnow()
        )
    assert repeat.credited is not None and not repeat.created
    with db.read_session() as session:
        assert session.scalar(select(func.count()).select_from(DepositRequest)) == 0
    assert balance(db, shop.a.id) == ["1100.00 USD"]


@pytest.mark.parametrize("reference", ["", "   ", "x" * 129])
def test_a_reference_is_required(db: Database, shop: factories.Shop, reference: str) -> None:
    with db.session() as session, pytest.raises(InvalidInputError):
        partner = partners.get_partner(session, shop.a.id)
        wallet.ask_deposit(
            session, partner, Money(900000, "USD"), reference, ALICE, THRESHOLDS, utcnow()
        )


# --- Deciding ------------------------------------------------------------------------------------


def test_a_second_person_approves_and_the_ledger_is_a_deposit_like_any_other(
    db: Database, shop: factories.Shop
) -> None:
    assert ask(db, shop.b.id, "5000.00", reference="WIRE-DIRECT").credited is not None
    big = request_of(ask(db, shop.a.id, "6000.00", reference="WIRE-6K"))

    approved = approve(db, big.id)
    assert approved.credited is not None and approved.created
    assert approved.credited.balance == Money.parse("7000.00", "USD")
    decided = request_of(approved)
    assert (decided.status, decided.decided_by) == ("approved", BOB)
    assert decided.transaction_id == approved.credited.transaction.public_id
    with db.read_session() as session:
        entries = wallet.ledger_entries(
            session, partners.get_partner(session, shop.a.id).id, after=None, limit=10,
            currency=None,
        )  # fmt: skip
        assert [(e.kind, e.reference, str(e.amount)) for e in entries[-1:]] == [
            ("deposit", "WIRE-6K", "6000.00 USD")
        ]
        # The same two postings as a direct deposit: wallet +, funding -.
        shapes = [
            sorted(
                session.scalars(
                    select(Posting.amount_minor)
                    .join(LedgerTransaction)
                    .where(LedgerTransaction.reference == reference)
                )
            )
            for reference in ("WIRE-DIRECT", "WIRE-6K")
        ]
        assert shapes == [[-500000, 500000], [-600000, 600000]]
        actions = session.scalars(
            select(AuditEvent.action).where(AuditEvent.subject == "WIRE-6K").order_by(AuditEvent.id)
        ).all()
        assert actions == ["wallet.deposit_request", "wallet.deposit", "wallet.deposit_approve"]
        assert check_all(session) == []
    # Asked again after the approval: the deposit, not a second one.
    again = ask(db, shop.a.id, "6000.00", reference="WIRE-6K")
    assert again.credited is not None and not again.created
    assert balance(db, shop.a.id) == ["7000.00 USD"]


def test_the_one_who_asked_can_neither_approve_nor_decline(
    db: Database, shop: factories.Shop
) -> None:
    request = request_of(ask(db, shop.a.id, "9000.00", actor=ALICE))
    with pytest.raises(wallet.FourEyesError, match="second person"):
        approve(db, request.id, ALICE)
    with pytest.raises(wallet.FourEyesError):
        decline(db, request.id, ALICE)
    with db.read_session() as session:
        assert wallet.get_deposit_request(session, request.id).status == "pending"
    assert balance(db, shop.a.id) == ["1000.00 USD"]


def test_a_declined_request_credits_nothing_and_keeps_its_reference(
    db: Database, shop: factories.Shop
) -> None:
    request = request_of(ask(db, shop.a.id, "9000.00", reference="WIRE-9"))
    with pytest.raises(InvalidInputError, match="note"):
        decline(db, request.id, note="  ")
    decline(db, request.id, note="the bank has no such wire")
    with db.read_session() as session:
        declined = wallet.get_deposit_request(session, request.id)
        assert (declined.status, declined.decided_by, declined.note) == (
            "declined",
            BOB,
            "the bank has no such wire",
        )
        assert wallet.pending_deposits(session) == []
        assert [r.id for r in wallet.deposit_requests(session, status="declined")] == [request.id]
        assert wallet_checks(session) == []
    assert balance(db, shop.a.id) == ["1000.00 USD"]
    with pytest.raises(wallet.DepositConflictError, match="declined"):
        ask(db, shop.a.id, "9000.00", reference="WIRE-9")
    with db.session() as session, pytest.raises(wallet.DepositConflictError, match="declined"):
        partner = partners.get_partner(session, shop.a.id)
        wallet.deposit(session, partner, Money(900000, "USD"), "WIRE-9")


def test_a_request_is_decided_once(db: Database, shop: factories.Shop) -> None:
    first = request_of(ask(db, shop.a.id, "9000.00"))
    second = request_of(ask(db, shop.a.id, "9500.00"))
    approve(db, first.id)
    decline(db, second.id)
    for request in (first, second):
        with pytest.raises(wallet.DepositDecidedError, match="already"):
            approve(db, request.id, "operator:carol")
        with pytest.raises(wallet.DepositDecidedError):
            decline(db, request.id, "operator:carol")
    with pytest.raises(wallet.DepositRequestNotFoundError):
        approve(db, "dep_nope")
    assert balance(db, shop.a.id) == ["10000.00 USD"]


def test_a_reference_deposited_directly_while_its_request_was_filed_is_not_credited_twice(
    db: Database, shop: factories.Shop
) -> None:
    """The two checks (request table, ledger) can race: a direct deposit that slipped past the
    request filed at the same moment (here: the ledger credit itself) makes approval refuse."""
    request = request_of(ask(db, shop.a.id, "9000.00", reference="WIRE-RACE"))
    with db.session() as session:
        partner = partners.get_partner(session, shop.a.id)
        moves.credit(session, partner, Money.parse("9000.00", "USD"), "WIRE-RACE", "operator:x")
    with pytest.raises(wallet.DepositConflictError, match="already deposited"):
        approve(db, request.id)
    with db.read_session() as session:
        assert wallet.get_deposit_request(session, request.id).status == "pending"
    assert balance(db, shop.a.id) == ["10000.00 USD"]  # once


# --- Races (PostgreSQL: the second waits for the first's lock) -----------------------------------


@pytest.mark.live
def test_two_approvals_at_once_credit_once(db: Database, shop: factories.Shop) -> None:
    request = request_of(ask(db, shop.a.id, "9000.00"))

    def first(session: Session) -> None:
        wallet.approve_deposit(session, request.id, BOB, utcnow())

    def second() -> str:
        try:
            approve(db, request.id, "staff:mbr_carol")
        except wallet.DepositDecidedError as exc:
            return exc.slug
        return "approved twice"

    assert second_while_first_is_open(db, first, second) == "deposit-already-decided"
    assert balance(db, shop.a.id) == ["10000.00 USD"]
    with db.read_session() as session:
        assert wallet_checks(session) == []


@pytest.mark.live
def test_a_stampede_of_approvals_and_declines_decides_once(
    db: Database, shop: factories.Shop
) -> None:
    request = request_of(ask(db, shop.a.id, "9000.00"))
    start = threading.Barrier(6)

    def decide(n: int) -> str:
        start.wait()
        try:
            if n % 2:
                decline(db, request.id, f"staff:mbr_{n}")
            else:
                approve(db, request.id, f"staff:mbr_{n}")
        except wallet.DepositDecidedError:
            return "refused"
        return "decided"

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(decide, range(6)))
    assert sorted(results) == ["decided"] + ["refused"] * 5
    with db.read_session() as session:
        status = wallet.get_deposit_request(session, request.id).status
        assert wallet_checks(session) == []
    assert balance(db, shop.a.id) == (["10000.00 USD"] if status == "approved" else ["1000.00 USD"])
    assert deposits_posted(db) == (3 if status == "approved" else 2)


# --- Money is conserved, whatever people do ------------------------------------------------------


@dataclass(frozen=True)
class Step:
    cents: int  # asked for (the threshold is 5000.00)
    decision: str  # what is then tried: approve, approve-self, decline, nothing


steps = st.lists(
    st.builds(
        Step,
        st.integers(1, 1_000_000),
        st.sampled_from(["approve", "approve-self", "decline", "nothing"]),
    ),
    max_size=8,
)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plan=steps)
def test_random_asks_and_decisions_credit_exactly_the_direct_and_approved(
    db: Database, plan: list[Step]
) -> None:
    partner = factories.add_partner(db, "Prop")
    expected = 0
    for step in plan:
        outcome = ask(db, partner.id, Money(step.cents, "USD").amount)
        if not outcome.pending:
            assert step.cents <= 500000
            expected += step.cents
            continue
        assert step.cents > 500000
        request_id = request_of(outcome).id
        if step.decision == "approve":
            approve(db, request_id)
            expected += step.cents
        elif step.decision == "approve-self":
            with pytest.raises(wallet.FourEyesError):
                approve(db, request_id, ALICE)
        elif step.decision == "decline":
            decline(db, request_id)
    with db.read_session() as session:
        found = wallet.balances(session, partners.get_partner(session, partner.id).id)
        assert sum(m.minor for m in found) == expected
        assert check_all(session) == []
