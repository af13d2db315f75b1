"""Remedies under random sequences of operations, on SQLite and PostgreSQL.

A hypothesis state machine runs one small shop (one SKU, a handful of codes, two partners)
through the claims, orders and stock services: filing claims on random delivered codes with a
random remedy, every operator decision, the partner's cancel, evidence and remedy switch, orders,
imports and ``fulfil_waiting``. Refusals (``DomainError``) are allowed, but the machine keeps its
own model of every claim, code and wallet and predicts which calls are refused and what each one
does. After every step the invariants are checked independently, with SQL: one state per code, at
most one remedy per code, remedied codes voided and never available again, refunds equal to what
was paid (never more per order), one open claim per code, balances equal to deposits - order
debits + refunds as the model computes them, and the services' own ledger checks.
"""

from __future__ import annotations

import contextlib
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select

from codeshelf.claims import service as claims
from codeshelf.claims.evidence import EvidenceStore
from codeshelf.claims.models import (
    OPEN_STATUSES,
    TRANSITIONS,
    Claim,
    ClaimCode,
    ClaimStatus,
    Remedy,
    RemedyKind,
    RemedyState,
)
from codeshelf.invariants import check_all
from codeshelf.kit.clock import utcnow
from codeshelf.kit.db import Database
from codeshelf.kit.errors import DomainError
from codeshelf.kit.vault import Vault
from codeshelf.orders import service as orders
from codeshelf.orders.models import Order, OrderItem, OrderKind
from codeshelf.partners import service as partners
from codeshelf.partners.models import Partner
from codeshelf.stock.models import Code, CodeState
from codeshelf.wallet import service as wallet
from codeshelf.wallet.models import (
    Account,
    AccountKind,
    LedgerTransaction,
    Posting,
    TransactionKind,
)
from tests.fixtures import factories
from tests.fixtures.databases import Backend

PRICE = 4650  # psn-us-50, for both partners
DEPOSIT = 100_000  # make_shop gives each partner 1000.00
INITIAL_STOCK = 6
OPERATOR = claims.Actor("operator:state-machine")
NOT_COVERED_RULE = "not_covered.public_exposure"
OPERATOR_ACTIONS = ("approve", "approve", "approve", "reject", "request_info", "escalate")
PARTNER_ACTIONS = ("cancel", "evidence", RemedyKind.REFUND, RemedyKind.REPLACEMENT)
PICKS = st.integers(0, 10_000)
REMEDY = st.sampled_from(tuple(RemedyKind))
EXPOSED = st.booleans()


def _decidable(status: str, target: str) -> bool:
    """Whether an operator's decision may move a claim from ``status`` to ``target``: the
    lifecycle's transitions, a submitted claim being triaged on the way."""
    return target in TRANSITIONS[status] or (
        status == ClaimStatus.SUBMITTED and target in TRANSITIONS[ClaimStatus.TRIAGED]
    )


@dataclass
class ModelClaim:
    """What the model knows of a claim: enough to predict every service's answer."""

    public_id: str
    code_ids: tuple[int, ...]
    paid: int  # the unit price of each of its codes: PRICE, or 0 on a replacement order
    remedy: str
    status: str = ClaimStatus.SUBMITTED
    escalated: bool = False
    approved_at: int | None = None  # the model's clock: the order approvals were made in

    @property
    def needs_stock(self) -> bool:
        """Its remedy is a replacement: asked for, or a refund of a free code (paid nothing)."""
        return self.remedy == RemedyKind.REPLACEMENT or self.paid == 0


@dataclass
class Model:
    balances: dict[str, int]  # partner public id -> cents
    available: int = INITIAL_STOCK
    imported: int = INITIAL_STOCK
    claims: dict[str, ModelClaim] = field(default_factory=dict)
    code_states: dict[int, str] = field(default_factory=dict)  # every code ever delivered
    item_of: dict[int, int] = field(default_factory=dict)  # code id -> its order item, forever
    remedied: set[int] = field(default_factory=set)  # codes that have had their remedy
    undelivered: int = 0  # codes the model expects to appear on orders since the last check
    clock: int = 0

    def open_codes(self) -> set[int]:
        return {
            code_id
            for claim in self.claims.values()
            if claim.status in OPEN_STATUSES
            for code_id in claim.code_ids
        }


@dataclass(frozen=True)
class OwnedCode:
    code_id: int
    code: str
    order_id: str
    unit_price: int


class ClaimsMachine(RuleBasedStateMachine):
    claim_ids: Bundle[str] = Bundle("claims")

    def __init__(self, new_database: Callable[[], Database], vault: Vault, root: Path) -> None:
        super().__init__()
        self.db = new_database()
        self.vault = vault
        self.store = EvidenceStore(root / uuid.uuid4().hex, vault)
        self.shop = factories.make_shop(self.db, vault, stock_count=INITIAL_STOCK)
        self.partner_ids = {"a": self.shop.a.id, "b": self.shop.b.id}
        self.model = Model(balances={self.shop.a.id: DEPOSIT, self.shop.b.id: DEPOSIT})

    def teardown(self) -> None:
        self.db.dispose()

    # --- Running services -------------------------------------------------------------------

    def _run(self, work: Callable[[Any, Partner], object], partner_id: str | None = None) -> Any:
        """Run one service call in its own transaction, as the API does: refused means nothing
        kept. Returns the call's result, or the DomainError that refused it."""
        try:
            with self.db.session() as session:
                partner = partners.get_partner(session, partner_id or self.shop.a.id)
                return work(session, partner)
        except DomainError as exc:
            return exc

    def _expect(self, outcome: object, allowed: bool, what: str) -> bool:
        if allowed:
            assert not isinstance(outcome, DomainError), f"{what} refused: {outcome!r}"
        else:
            assert isinstance(outcome, DomainError), f"{what} was not refused"
        return allowed

    def _claim(self, claim_id: str) -> ModelClaim:
        return self.model.claims[claim_id]

    def _remedy_now(self, claim: ModelClaim) -> None:
        """The model of ``_fulfil``: refund what was paid, or replace if stock allows."""
        count = len(claim.code_ids)
        if not claim.needs_stock:
            self.model.balances[self.shop.a.id] += claim.paid * count
            claim.status = ClaimStatus.RESOLVED
        elif self.model.available >= count:
            self.model.available -= count
            self.model.undelivered += count
            claim.status = ClaimStatus.RESOLVED
        else:
            claim.status = ClaimStatus.APPROVED

    # --- Orders and stock -------------------------------------------------------------------

    def _buy(self, who: str, quantity: int) -> None:
        partner_id = self.partner_ids[who]

        def place(session: Any, partner: Partner) -> object:
            item = orders.ItemRequest(quantity=quantity, pointer="#", product_id=self.shop.sku)
            with session.begin_nested():
                priced = orders.price_items(session, partner, [item])
                return orders.place_order(session, partner, priced, None)

        outcome = self._run(place, partner_id)
        cost = PRICE * quantity
        if quantity > self.model.available:
            assert isinstance(outcome, DomainError) and outcome.slug == "insufficient-stock"
        elif cost > self.model.balances[partner_id]:
            assert isinstance(outcome, DomainError) and outcome.slug == "insufficient-funds"
        else:
            assert not isinstance(outcome, DomainError), outcome
            self.model.available -= quantity
            self.model.undelivered += quantity
            self.model.balances[partner_id] -= cost

    @initialize(quantity=st.integers(2, 3))
    def first_order(self, quantity: int) -> None:
        self._buy("a", quantity)

    @rule(who=st.sampled_from(["a", "a", "b"]), quantity=st.integers(1, 3))
    def place_order(self, who: str, quantity: int) -> None:
        self._buy(who, quantity)

    @rule(count=st.integers(1, 3))
    def import_codes(self, count: int) -> None:
        factories.load_codes(self.db, self.vault, self.shop.sku, count)
        self.model.available += count
        self.model.imported += count

    @rule()
    def fulfil_waiting(self) -> None:
        expected = []
        waiting = sorted(
            (c for c in self.model.claims.values() if c.status == ClaimStatus.APPROVED),
            key=lambda c: c.approved_at or 0,
        )
        for claim in waiting:
            self._remedy_now(claim)
            if claim.status == ClaimStatus.RESOLVED:
                expected.append(claim.public_id)
        outcome = self._run(lambda session, _: claims.fulfil_waiting(session, OPERATOR))
        assert outcome == expected

    # --- The partner's side -----------------------------------------------------------------

    def _owned_codes(self) -> list[list[OwnedCode]]:
        """Partner A's delivered codes (voided ones too), grouped by order, in id order."""
        with self.db.read_session() as session:
            rows = session.execute(
                select(
                    Code.id,
                    Code.sealed,
                    Code.fingerprint,
                    Code.key_id,
                    Order.public_id,
                    OrderItem.unit_price_minor,
                )
                .join(OrderItem, OrderItem.id == Code.order_item_id)
                .join(Order, Order.id == OrderItem.order_id)
                .join(Partner, Partner.id == Order.partner_id)
                .where(Partner.public_id == self.shop.a.id)
                .order_by(Order.id, Code.id)
            ).all()
        grouped: dict[str, list[OwnedCode]] = {}
        for code_id, sealed, fingerprint, key_id, order_id, price in rows:
            plain = self.vault.open(sealed, fingerprint, key_id)
            grouped.setdefault(order_id, []).append(OwnedCode(code_id, plain, order_id, price))
        return list(grouped.values())

    def _file(self, pick: int, size: int, remedy: str, exposed: bool) -> MultipleResults[str] | str:
        by_order = self._owned_codes()
        owned = by_order[pick % len(by_order)]
        start = (pick // len(by_order)) % len(owned)
        chosen = [owned[(start + i) % len(owned)] for i in range(min(size, len(owned)))]
        data = claims.ClaimInput(
            order_id=chosen[0].order_id,
            codes=[
                claims.CodeClaimInput(code=c.code, pointer=f"#/codes/{i}")
                for i, c in enumerate(chosen)
            ],
            problem="invalid",
            remedy=remedy,
            redemption=claims.Redemption(
                account_region="US",
                attempted_at=utcnow(),
                error_code="WS-37432-9",
                exposed_publicly=exposed,
            ),
        )
        outcome = self._run(
            lambda session, partner: claims.file_claim(
                session, self.vault, self.store, partner, data
            )
        )
        ids = {c.code_id for c in chosen}
        if remedy == RemedyKind.REFUND and chosen[0].unit_price == 0:
            # Codes sent as replacements are replaced again, never refunded: checked first.
            assert isinstance(outcome, DomainError), "a replacement code was offered a refund"
            assert outcome.slug == "validation-error", outcome.slug
            return multiple()
        if ids & self.model.remedied:
            assert isinstance(outcome, DomainError), "a remedied code was claimed again"
            assert outcome.slug == "code-already-remedied", outcome.slug
            return multiple()
        if ids & self.model.open_codes():
            assert isinstance(outcome, DomainError), "a code was put in a second open claim"
            assert outcome.slug == "claim-already-open", outcome.slug
            return multiple()
        assert isinstance(outcome, Claim), outcome
        self.model.claims[outcome.public_id] = ModelClaim(
            outcome.public_id,
            tuple(c.code_id for c in chosen),
            chosen[0].unit_price,
            remedy,
        )
        return outcome.public_id

    def _cancel(self, claim_id: str) -> None:
        claim = self._claim(claim_id)
        outcome = self._run(lambda session, partner: claims.cancel(session, partner, claim_id))
        if self._expect(outcome, ClaimStatus.CANCELLED in TRANSITIONS[claim.status], "cancel"):
            claim.status = ClaimStatus.CANCELLED

    def _add_evidence(self, claim_id: str) -> None:
        claim = self._claim(claim_id)
        data = claims.EvidenceInput(note="tried again on a US account")
        outcome = self._run(
            lambda session, partner: claims.add_evidence(
                session, self.vault, self.store, partner, claim_id, data
            )
        )
        allowed = claim.status in (
            ClaimStatus.SUBMITTED,
            ClaimStatus.TRIAGED,
            ClaimStatus.NEEDS_INFO,
        )
        if self._expect(outcome, allowed, "evidence") and claim.status == ClaimStatus.NEEDS_INFO:
            claim.status = ClaimStatus.SUBMITTED

    def _switch_remedy(self, claim_id: str, remedy: str) -> None:
        claim = self._claim(claim_id)
        outcome = self._run(
            lambda session, partner: claims.change_remedy(session, partner, claim_id, remedy)
        )
        allowed = claim.status in OPEN_STATUSES and (
            claim.status != ClaimStatus.APPROVED or remedy == RemedyKind.REFUND
        )
        allowed = allowed and not (remedy == RemedyKind.REFUND and claim.paid == 0)
        if not self._expect(outcome, allowed, "remedy switch"):
            return
        claim.remedy = remedy
        if (
            claim.status == ClaimStatus.APPROVED
        ):  # a waiting replacement becomes a refund, paid at once
            self._remedy_now(claim)

    # --- The operator's decisions -----------------------------------------------------------

    def _approve(self, claim_id: str) -> None:
        claim = self._claim(claim_id)
        outcome = self._run(
            lambda session, _: claims.approve(
                session, claim_id, OPERATOR, "verified", override=True
            )
        )
        if not self._expect(outcome, _decidable(claim.status, ClaimStatus.APPROVED), "approve"):
            return
        self.model.clock += 1
        claim.approved_at = self.model.clock
        for code_id in claim.code_ids:
            self.model.code_states[code_id] = CodeState.VOIDED
        self.model.remedied.update(claim.code_ids)
        self._remedy_now(claim)

    def _reject(self, claim_id: str) -> None:
        claim = self._claim(claim_id)
        outcome = self._run(
            lambda session, _: claims.reject(
                session, claim_id, OPERATOR, "shown on a stream", NOT_COVERED_RULE
            )
        )
        if not self._expect(outcome, _decidable(claim.status, ClaimStatus.REJECTED), "reject"):
            return
        claim.status = ClaimStatus.REJECTED
        for code_id in claim.code_ids:
            self.model.code_states[code_id] = (
                CodeState.DELIVERED
            )  # back from quarantine, if escalated

    def _request_info(self, claim_id: str) -> None:
        claim = self._claim(claim_id)
        outcome = self._run(
            lambda session, _: claims.request_info(
                session, claim_id, OPERATOR, "please send the screenshot"
            )
        )
        if self._expect(outcome, _decidable(claim.status, ClaimStatus.NEEDS_INFO), "request-info"):
            claim.status = ClaimStatus.NEEDS_INFO

    def _escalate(self, claim_id: str) -> None:
        claim = self._claim(claim_id)
        outcome = self._run(
            lambda session, _: claims.escalate(session, claim_id, OPERATOR, "disputed upstream")
        )
        if self._expect(outcome, _decidable(claim.status, ClaimStatus.ESCALATED), "escalate"):
            claim.status = ClaimStatus.ESCALATED
            claim.escalated = True
            for code_id in claim.code_ids:
                self.model.code_states[code_id] = CodeState.QUARANTINED

    # --- The rules: claims are filed and decided twice as often as anything else happens -----

    @rule(target=claim_ids, pick=PICKS, size=st.integers(1, 2), remedy=REMEDY, exposed=EXPOSED)
    def file_claim(
        self, pick: int, size: int, remedy: str, exposed: bool
    ) -> MultipleResults[str] | str:
        return self._file(pick, size, remedy, exposed)

    @rule(target=claim_ids, pick=PICKS, size=st.integers(1, 2), remedy=REMEDY, exposed=EXPOSED)
    def file_another_claim(
        self, pick: int, size: int, remedy: str, exposed: bool
    ) -> MultipleResults[str] | str:
        return self._file(pick, size, remedy, exposed)

    @rule(claim_id=claim_ids, action=st.sampled_from(OPERATOR_ACTIONS))
    def operator_decides(self, claim_id: str, action: str) -> None:
        self._decide(claim_id, action)

    @rule(claim_id=claim_ids, action=st.sampled_from(OPERATOR_ACTIONS))
    def operator_decides_again(self, claim_id: str, action: str) -> None:
        self._decide(claim_id, action)

    def _decide(self, claim_id: str, action: str) -> None:
        {
            "approve": self._approve,
            "reject": self._reject,
            "request_info": self._request_info,
            "escalate": self._escalate,
        }[action](claim_id)

    @rule(claim_id=claim_ids, action=st.sampled_from(PARTNER_ACTIONS))
    def partner_acts(self, claim_id: str, action: str) -> None:
        if action == "cancel":
            self._cancel(claim_id)
        elif action == "evidence":
            self._add_evidence(claim_id)
        else:
            self._switch_remedy(claim_id, action)

    # --- Invariants, checked with SQL after every step --------------------------------------

    @invariant()
    def ledger_checks_pass(self) -> None:
        with self.db.read_session() as session:
            assert check_all(session) == []

    @invariant()
    def claims_are_as_modelled(self) -> None:
        with self.db.read_session() as session:
            found = {
                public_id: (status, remedy)
                for public_id, status, remedy in session.execute(
                    select(Claim.public_id, Claim.status, Claim.remedy)
                )
            }
        expected = {c.public_id: (c.status, c.remedy) for c in self.model.claims.values()}
        assert found == expected

    @invariant()
    def every_code_is_in_one_state_and_delivered_at_most_once(self) -> None:
        model = self.model
        with self.db.read_session() as session:
            rows = session.execute(select(Code.id, Code.state, Code.order_item_id)).all()
        assert len(rows) == model.imported  # no code lost, none invented
        assert all(state in tuple(CodeState) for _, state, _ in rows)
        assert sum(1 for _, state, _ in rows if state == CodeState.AVAILABLE) == model.available
        fresh = 0
        for code_id, state, item_id in rows:
            if item_id is None:
                assert code_id not in model.item_of, f"code {code_id} left its order"
                assert state == CodeState.AVAILABLE, f"code {code_id} is {state} but on no order"
                continue
            assert state != CodeState.AVAILABLE, f"delivered code {code_id} is available again"
            if code_id not in model.item_of:  # delivered since the last step
                fresh += 1
                assert state == CodeState.DELIVERED
                model.item_of[code_id] = item_id
                model.code_states[code_id] = CodeState.DELIVERED
            assert model.item_of[code_id] == item_id, f"code {code_id} was delivered twice"
            assert model.code_states[code_id] == state, (code_id, state)
        assert fresh == model.undelivered
        model.undelivered = 0

    @invariant()
    def each_order_item_has_exactly_its_codes(self) -> None:
        with self.db.read_session() as session:
            rows = session.execute(
                select(OrderItem.id, OrderItem.quantity, func.count(Code.id))
                .outerjoin(Code, Code.order_item_id == OrderItem.id)
                .group_by(OrderItem.id, OrderItem.quantity)
            ).all()
        for item_id, quantity, codes in rows:
            assert codes == quantity, f"order item {item_id}: {quantity} ordered, {codes} codes"

    @invariant()
    def one_remedy_per_code_and_remedied_codes_are_voided(self) -> None:
        model = self.model
        with self.db.read_session() as session:
            remedies = session.execute(
                select(Remedy.code_id, Remedy.kind, Remedy.state, Claim.public_id)
                .join(ClaimCode, ClaimCode.id == Remedy.claim_code_id)
                .join(Claim, Claim.id == ClaimCode.claim_id)
            ).all()
            voided = set(session.scalars(select(Code.id).where(Code.state == CodeState.VOIDED)))
        per_code = Counter(code_id for code_id, _, _, _ in remedies)
        assert all(count == 1 for count in per_code.values()), per_code
        assert set(per_code) == model.remedied == voided
        for code_id, kind, state, claim_id in remedies:
            claim = model.claims[claim_id]
            assert code_id in claim.code_ids
            assert state == (
                RemedyState.WAITING if claim.status == ClaimStatus.APPROVED else RemedyState.DONE
            ), (claim, state)
            assert claim.status in (ClaimStatus.APPROVED, ClaimStatus.RESOLVED)
            if state == RemedyState.DONE:
                assert kind == (RemedyKind.REPLACEMENT if claim.needs_stock else RemedyKind.REFUND)

    @invariant()
    def refunds_match_what_was_paid(self) -> None:
        with self.db.read_session() as session:
            credited = session.execute(
                select(
                    LedgerTransaction.id,
                    LedgerTransaction.order_id,
                    Posting.amount_minor,
                    OrderItem.unit_price_minor,
                    OrderItem.order_id,
                )
                .join(Posting, Posting.transaction_id == LedgerTransaction.id)
                .join(Account, Account.id == Posting.account_id)
                .outerjoin(Remedy, Remedy.ledger_transaction_id == LedgerTransaction.id)
                .outerjoin(ClaimCode, ClaimCode.id == Remedy.claim_code_id)
                .outerjoin(OrderItem, OrderItem.id == ClaimCode.order_item_id)
                .where(
                    LedgerTransaction.kind == TransactionKind.REFUND,
                    Account.kind == AccountKind.WALLET,
                )
            ).all()
            paid = dict(
                session.execute(
                    select(Order.id, Order.total_minor).where(Order.kind == OrderKind.PURCHASE)
                ).all()
            )
        refunded: Counter[int] = Counter()
        for txn_id, order_id, amount, unit_price, item_order in credited:
            assert unit_price is not None, f"refund {txn_id} belongs to no claimed code"
            assert amount == unit_price > 0, f"refund {txn_id}: {amount}, paid {unit_price}"
            assert order_id == item_order, f"refund {txn_id} credited against another order"
            refunded[order_id] += amount
        for order_id, total in refunded.items():
            assert order_id in paid, f"order {order_id} was refunded but never paid for"
            assert total <= paid[order_id], (
                f"order {order_id}: refunded {total} of {paid[order_id]}"
            )

    @invariant()
    def a_code_is_in_at_most_one_open_claim(self) -> None:
        with self.db.read_session() as session:
            rows = session.execute(
                select(ClaimCode.code_id, ClaimCode.open, Claim.status).join(
                    Claim, Claim.id == ClaimCode.claim_id
                )
            ).all()
        for code_id, is_open, status in rows:
            assert is_open == (status in OPEN_STATUSES), (code_id, is_open, status)
        held = Counter(code_id for code_id, is_open, _ in rows if is_open)
        assert all(count == 1 for count in held.values()), held
        assert set(held) == self.model.open_codes()

    @invariant()
    def replacement_orders_are_free_and_one_per_fulfilment(self) -> None:
        with self.db.read_session() as session:
            rows = session.execute(
                select(Order.id, Order.total_minor, func.sum(OrderItem.quantity))
                .join(OrderItem, OrderItem.order_id == Order.id)
                .where(Order.kind == OrderKind.REPLACEMENT)
                .group_by(Order.id, Order.total_minor)
            ).all()
            pointing = Counter(
                session.scalars(
                    select(Remedy.replacement_order_id).where(
                        Remedy.replacement_order_id.is_not(None)
                    )
                )
            )
            posted = session.scalar(
                select(func.count())
                .select_from(LedgerTransaction)
                .join(Order, Order.id == LedgerTransaction.order_id)
                .where(Order.kind == OrderKind.REPLACEMENT)
            )
        assert posted == 0, "money moved for a replacement order"
        for order_id, total, quantity in rows:
            assert total == 0
            assert pointing[order_id] == quantity, "a replacement code without its remedy"
        assert set(pointing) == {order_id for order_id, _, _ in rows}

    @invariant()
    def balances_are_deposits_minus_orders_plus_refunds(self) -> None:
        with self.db.read_session() as session:
            for partner_id, expected in self.model.balances.items():
                partner = partners.get_partner(session, partner_id)
                [money] = wallet.balances(session, partner.id)
                assert money.minor == expected, (partner_id, money.minor, expected)
                assert money.minor >= 0


@pytest.fixture
def new_database(backend: Backend) -> Iterator[Callable[[], Database]]:
    """Makes a database of its own for each example the state machine runs: a transaction of
    the worker's database, rolled back when the next example starts (and at the end)."""
    examples = contextlib.ExitStack()

    def make() -> Database:
        examples.close()
        return examples.enter_context(backend.transaction())

    with examples:
        yield make


@pytest.mark.slow
def test_random_claim_histories_keep_every_invariant(
    new_database: Callable[[], Database], vault: Vault, tmp_path: Path
) -> None:
    run_state_machine_as_test(  # type: ignore[no-untyped-call]
        lambda: ClaimsMachine(new_database, vault, tmp_path / "evidence"),
        settings=settings(
            max_examples=25,
            stateful_step_count=15,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
