"""Per-code decisions under random plans, on SQLite and PostgreSQL.

Each example files one claim on 1-4 codes of one order (refund or replacement, stock for the
replacements or not, escalated first or not), then decides its codes in 1-3 steps, each code
approved or rejected at random. After every step the ledger and claims invariants hold
(``invariants.check_all``); at the end the money refunded is exactly the approved codes' paid
prices, each approved code has one remedy and each rejected one none, and the claim's status
follows the rule: approved (then resolved once its remedies are done) if any code was
approved, else rejected.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from codeshelf.claims import service as claims
from codeshelf.claims.evidence import EvidenceStore
from codeshelf.claims.models import ClaimStatus, CodeDecision, Remedy, RemedyKind
from codeshelf.invariants import check_all
from codeshelf.kit.clock import utcnow
from codeshelf.kit.db import Database
from codeshelf.kit.vault import Vault
from codeshelf.orders import service as orders
from codeshelf.partners import service as partners
from codeshelf.stock.models import Code, CodeState
from codeshelf.wallet import service as wallet
from codeshelf.wallet.models import LedgerTransaction, TransactionKind
from tests.fixtures import factories
from tests.fixtures.databases import Backend

PRICE = 4650  # psn-us-50
DEPOSIT = 100_000
OPERATOR = claims.Actor("operator:property")
RULE = "not_covered.public_exposure"


@dataclass(frozen=True)
class Plan:
    decisions: list[str]  # per code: approved or rejected
    steps: list[int]  # per code: the step (0, 1, 2) it is decided in
    remedy: str
    spare_stock: int  # codes left in stock after the order, for replacements
    escalate: bool


@st.composite
def plans(draw: Any) -> Plan:
    size = draw(st.integers(1, 4))
    return Plan(
        decisions=draw(
            st.lists(st.sampled_from(tuple(CodeDecision)), min_size=size, max_size=size)
        ),
        steps=draw(st.lists(st.integers(0, 2), min_size=size, max_size=size)),
        remedy=draw(st.sampled_from(tuple(RemedyKind))),
        spare_stock=draw(st.integers(0, 4)),
        escalate=draw(st.booleans()),
    )


@pytest.fixture
def new_database(backend: Backend) -> Iterator[Callable[[], Database]]:
    """A database of its own per example: a transaction of the worker's database, rolled back
    when the next example starts (and at the end)."""
    examples = contextlib.ExitStack()

    def make() -> Database:
        examples.close()
        return examples.enter_context(backend.transaction())

    with examples:
        yield make


def _file(
    db: Database, vault: Vault, store: EvidenceStore, shop: factories.Shop, plan: Plan
) -> str:
    size = len(plan.decisions)
    with db.session() as session:
        partner = partners.get_partner(session, shop.a.id)
        item = orders.ItemRequest(quantity=size, pointer="#", product_id=shop.sku)
        placed = orders.place_order(
            session, partner, orders.price_items(session, partner, [item]), None
        )
        _, codes = orders.delivered_codes(session, vault, partner, placed.public_id)
        data = claims.ClaimInput(
            order_id=placed.public_id,
            codes=[
                claims.CodeClaimInput(code=c.code, pointer=f"#/codes/{i}")
                for i, c in enumerate(codes)
            ],
            problem="invalid",
            remedy=plan.remedy,
            redemption=claims.Redemption(
                account_region="US", attempted_at=utcnow(), error_code="WS-37432-9"
            ),
        )
        return claims.file_claim(session, vault, store, partner, data).public_id


def _facts(db: Database, claim_id: str) -> dict[str, Any]:
    with db.read_session() as session:
        claim = claims.get_claim(session, claim_id)
        [money] = wallet.balances(session, claim.partner_id)
        refunded = session.scalar(
            select(func.coalesce(func.sum(Remedy.amount_minor), 0)).where(
                Remedy.claim_code_id.in_([c.id for c in claim.codes])
            )
        )
        refunds = session.scalar(
            select(func.count())
            .select_from(LedgerTransaction)
            .where(LedgerTransaction.kind == TransactionKind.REFUND)
        )
        states = dict(
            session.execute(
                select(Code.id, Code.state).where(Code.id.in_([c.code_id for c in claim.codes]))
            ).all()
        )
        return {
            "status": claim.status,
            "balance": money.minor,
            "refunded": int(refunded or 0),
            "refunds": int(refunds or 0),
            "decisions": [c.decision for c in claim.codes],
            "open": [c.open for c in claim.codes],
            "remedies": [c.remedy is not None for c in claim.codes],
            "remedy_done": [c.remedy is not None and c.remedy.state == "done" for c in claim.codes],
            "states": [states[c.code_id] for c in claim.codes],
            "violations": check_all(session),
        }


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(plan=plans())
def test_random_splits_pay_exactly_the_approved_codes(
    new_database: Callable[[], Database], vault: Vault, tmp_path: Path, plan: Plan
) -> None:
    db = new_database()
    store = EvidenceStore(tmp_path / uuid.uuid4().hex, vault)
    size = len(plan.decisions)
    shop = factories.make_shop(db, vault, stock_count=size + plan.spare_stock)
    claim_id = _file(db, vault, store, shop, plan)
    if plan.escalate:
        with db.session() as session:
            claims.escalate(session, claim_id, OPERATOR, "ask the supplier")

    available, waiting, done = plan.spare_stock, [], set()
    for step in sorted(set(plan.steps)):
        chosen = [i for i in range(size) if plan.steps[i] == step]
        approve = [i + 1 for i in chosen if plan.decisions[i] == CodeDecision.APPROVED]
        reject = [i + 1 for i in chosen if plan.decisions[i] == CodeDecision.REJECTED]
        with db.session() as session:
            claims.decide(
                session,
                claim_id,
                OPERATOR,
                f"step {step}",
                approve=approve,
                reject=reject,
                rule=RULE if reject else None,
            )
        if plan.remedy == RemedyKind.REFUND:  # paid at once
            done.update(approve)
        else:  # all waiting replacements are allocated together, or none
            waiting += approve
            if waiting and available >= len(waiting):
                available -= len(waiting)
                done.update(waiting)
                waiting = []
        facts = _facts(db, claim_id)
        assert facts["violations"] == []
        last = step == max(plan.steps)
        if not last:
            expected = ClaimStatus.ESCALATED if plan.escalate else ClaimStatus.TRIAGED
            assert facts["status"] == expected

    approved = [d == CodeDecision.APPROVED for d in plan.decisions]
    facts = _facts(db, claim_id)
    assert facts["decisions"] == plan.decisions
    # Each approved code has exactly one remedy, each rejected one none.
    assert facts["remedies"] == approved
    # The money refunded is exactly the approved codes' paid prices.
    refunded = PRICE * sum(approved) if plan.remedy == RemedyKind.REFUND else 0
    assert facts["refunded"] == refunded
    assert facts["refunds"] == (sum(approved) if plan.remedy == RemedyKind.REFUND else 0)
    assert facts["balance"] == DEPOSIT - PRICE * size + refunded
    # Approved codes are voided; rejected ones are the partner's again (out of quarantine).
    assert facts["states"] == [CodeState.VOIDED if ok else CodeState.DELIVERED for ok in approved]
    # The final status rule.
    if not any(approved):
        assert facts["status"] == ClaimStatus.REJECTED
    else:
        assert facts["status"] == (ClaimStatus.APPROVED if waiting else ClaimStatus.RESOLVED)
    assert facts["remedy_done"] == [i + 1 in done for i in range(size)]
    # A rejected code no longer holds the code; an approved one until the claim closes.
    still_open = facts["status"] == ClaimStatus.APPROVED
    assert facts["open"] == [ok and still_open for ok in approved]
    assert facts["violations"] == []
