"""Claims under concurrency and crashes: approvals racing approvals, filings racing filings,
cancels and remedy switches racing decisions, replacements racing orders for the last codes, and
approvals that fail half way. Every test runs on SQLite and on PostgreSQL.

Where the outcome depends on the interleaving, either many callers are released at once (each on
its own HTTP connection) and the end state is checked whatever the order, or the first
transaction is held open by the test while the second runs into its locks, so that both orders
are exercised deterministically.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from codeshelf.audit.models import AuditEvent
from codeshelf.claims import service as claims
from codeshelf.claims.models import Claim, ClaimCode, ClaimStatus, Remedy, RemedyKind, RemedyState
from codeshelf.invariants import check_all
from codeshelf.kit.db import Database
from codeshelf.kit.vault import Vault
from codeshelf.orders import service as orders
from codeshelf.orders.models import Order, OrderItem, OrderKind
from codeshelf.partners import service as partners
from codeshelf.stock.models import Code, CodeState
from codeshelf.wallet import service as wallet
from codeshelf.wallet.models import LedgerTransaction, TransactionKind
from tests.fixtures import factories
from tests.fixtures.claims import operator_headers, reveal
from tests.fixtures.factories import Shop
from tests.fixtures.http import (
    assert_problem,
    balance,
    order,
    second_while_first_is_open,
    wait_until_blocked,
)
from tests.fixtures.servers import LiveServer

OPERATOR = claims.Actor("operator:race-test")
PRICE = 4650  # psn-us-50 for the shop's partners, in cents


# --- Helpers --------------------------------------------------------------------------------


def _claim_body(order_id: str, codes: Sequence[str], remedy: str) -> dict[str, object]:
    """An eligible claim: an invalid code, its PSN error code, a US account, tried just now."""
    return {
        "order_id": order_id,
        "codes": list(codes),
        "problem": "invalid",
        "remedy": remedy,
        "error_code": "WS-37432-9",
        "redemption": {"account_region": "US", "attempted_at": datetime.now(UTC).isoformat()},
    }


def _post(base_url: str, path: str, headers: dict[str, str], body: object = None) -> httpx.Response:
    """One request on a client (and connection) of its own, as an independent caller sends it."""
    with httpx.Client(base_url=base_url, timeout=120) as caller:
        response: httpx.Response = caller.post(path, json=body, headers=headers)
        return response


T = TypeVar("T")


def _together(count: int, work: Callable[[int], T]) -> list[T]:
    """Run ``work(0)`` … ``work(count - 1)`` in threads released at the same moment."""
    start = threading.Barrier(count)

    def run(index: int) -> T:
        start.wait()
        return work(index)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


@dataclass(frozen=True)
class Placed:
    order_id: str
    codes: list[str]  # as revealed to the partner
    code_ids: list[int]  # the same codes' rows, in the same order


def _place(client: httpx.Client, db: Database, headers: dict[str, str], quantity: int) -> Placed:
    response = order(client, headers, {"product_id": "psn-us-50", "quantity": quantity})
    assert response.status_code == 201, response.text
    order_id: str = response.json()["id"]
    codes = reveal(client, headers, order_id)  # in code id order, like _code_ids
    return Placed(order_id, codes, _code_ids(db, order_id))


def _code_ids(db: Database, order_public_id: str) -> list[int]:
    with db.read_session() as session:
        return list(
            session.scalars(
                select(Code.id)
                .join(OrderItem, OrderItem.id == Code.order_item_id)
                .join(Order, Order.id == OrderItem.order_id)
                .where(Order.public_id == order_public_id)
                .order_by(Code.id)
            )
        )


def _file(
    client: httpx.Client, headers: dict[str, str], order_id: str, codes: Sequence[str], remedy: str
) -> str:
    response = client.post(
        "/api/v1/claims", json=_claim_body(order_id, codes, remedy), headers=headers
    )
    assert response.status_code == 201, response.text
    claim_id: str = response.json()["id"]
    return claim_id


def _states(db: Database, code_ids: Sequence[int]) -> list[str]:
    with db.read_session() as session:
        rows = session.execute(select(Code.id, Code.state).where(Code.id.in_(code_ids)))
        found = {code_id: state for code_id, state in rows}
    return [found[code_id] for code_id in code_ids]


def _remedies(db: Database, code_ids: Sequence[int]) -> list[tuple[int, str, str]]:
    """(code id, kind, state) of every remedy of these codes."""
    with db.read_session() as session:
        rows = session.execute(
            select(Remedy.code_id, Remedy.kind, Remedy.state)
            .where(Remedy.code_id.in_(code_ids))
            .order_by(Remedy.code_id, Remedy.id)
        )
        return [(code_id, kind, state) for code_id, kind, state in rows]


def _claim_status(db: Database, claim_id: str) -> str:
    with db.read_session() as session:
        status = session.scalar(select(Claim.status).where(Claim.public_id == claim_id))
    assert status is not None
    return status


def _count(db: Database, query: Any) -> int:
    with db.read_session() as session:
        return int(session.scalar(query) or 0)


def _refunds(db: Database) -> int:
    return _count(
        db,
        select(func.count())
        .select_from(LedgerTransaction)
        .where(LedgerTransaction.kind == TransactionKind.REFUND),
    )


def _replacement_orders(db: Database) -> list[tuple[str, int]]:
    """(order id, codes ordered) of every replacement order."""
    with db.read_session() as session:
        rows = session.execute(
            select(Order.public_id, func.sum(OrderItem.quantity))
            .join(OrderItem, OrderItem.order_id == Order.id)
            .where(Order.kind == OrderKind.REPLACEMENT)
            .group_by(Order.public_id)
        )
        return [(order_id, int(quantity)) for order_id, quantity in rows]


def _available(db: Database) -> int:
    return _count(db, select(func.count()).where(Code.state == CodeState.AVAILABLE))


def _audit_count(db: Database, subject: str, action: str) -> int:
    return _count(
        db,
        select(func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.subject == subject, AuditEvent.action == action),
    )


def _violations(db: Database) -> list[str]:
    """Everything `codeshelf ledger check` verifies, read directly."""
    with db.read_session() as session:
        return check_all(session)


def _assert_ledger_check_passes(database_url: str) -> None:
    result = factories.run_cli(database_url, "ledger", "check")
    assert result.exit_code == 0, result.stdout + result.stderr


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _wallet(db: Database, partner_id: str) -> int:
    with db.read_session() as session:
        partner = partners.get_partner(session, partner_id)
        [money] = wallet.balances(session, partner.id)
    return money.minor


# --- Concurrent approvals ---------------------------------------------------------------------

APPROVERS = 8


@pytest.mark.parametrize("remedy", [RemedyKind.REFUND, RemedyKind.REPLACEMENT])
def test_concurrent_approvals_give_each_code_one_remedy(
    client: httpx.Client, live_server: LiveServer, shop: Shop, db: Database, database_url: str,
    remedy: str,
) -> None:  # fmt: skip
    placed = _place(client, db, shop.a.headers, 2)
    claim_id = _file(client, shop.a.headers, placed.order_id, placed.codes, remedy)
    operator = operator_headers(db)

    responses = _together(
        APPROVERS,
        lambda _: _post(
            live_server.url,
            f"/api/v1/admin/claims/{claim_id}/approve",
            operator,
            {"reason": "verified with PSN"},
        ),
    )

    outcome = Counter(response.status_code for response in responses)
    assert outcome == {200: 1, 409: APPROVERS - 1}, [r.text for r in responses]
    for response in responses:
        if response.status_code == 409:
            assert_problem(response, 409, "claim-state-conflict")
    [won] = [response.json() for response in responses if response.status_code == 200]
    assert won["status"] == ClaimStatus.RESOLVED
    assert _claim_status(db, claim_id) == ClaimStatus.RESOLVED
    assert _remedies(db, placed.code_ids) == [
        (i, remedy, RemedyState.DONE) for i in placed.code_ids
    ]
    assert _states(db, placed.code_ids) == [CodeState.VOIDED, CodeState.VOIDED]
    assert _audit_count(db, claim_id, "claim.approve") == 1
    if remedy == RemedyKind.REFUND:
        assert _refunds(db) == 2  # one per code, each posted once
        assert _replacement_orders(db) == []
        assert balance(client, shop.a.headers) == "1000.00"  # paid 93.00, refunded 93.00 once
        assert _available(db) == 18
    else:
        assert _refunds(db) == 0
        [(replacement_id, quantity)] = _replacement_orders(db)
        assert quantity == 2
        assert won["replacement_order_ids"] == [replacement_id]
        fresh = reveal(client, shop.a.headers, replacement_id)
        assert len(set(fresh)) == 2 and not set(fresh) & set(placed.codes)
        assert balance(client, shop.a.headers) == "907.00"
        assert _available(db) == 16
    _assert_ledger_check_passes(database_url)


# --- Concurrent filing ------------------------------------------------------------------------

FILERS = 6


def test_concurrent_filings_on_one_code_open_one_claim(
    client: httpx.Client, live_server: LiveServer, shop: Shop, db: Database
) -> None:
    # Every filer names the shared code, with (for half of them) a code of its own beside it.
    placed = _place(client, db, shop.a.headers, FILERS + 1)
    shared, own = placed.codes[0], placed.codes[1:]

    def filer(index: int) -> httpx.Response:
        codes = [shared, own[index]] if index % 2 else [shared]
        return _post(
            live_server.url,
            "/api/v1/claims",
            shop.a.headers,
            _claim_body(placed.order_id, codes, RemedyKind.REFUND),
        )

    responses = _together(FILERS, filer)

    outcome = Counter(response.status_code for response in responses)
    assert outcome == {201: 1, 409: FILERS - 1}, [r.text for r in responses]
    [winner] = [(i, r.json()) for i, r in enumerate(responses) if r.status_code == 201]
    for response in responses:
        if response.status_code == 409:
            problem = assert_problem(response, 409, "claim-already-open")
            assert problem["existing_claim_id"] == winner[1]["id"]
    with db.read_session() as session:
        assert session.scalar(select(func.count()).select_from(Claim)) == 1
        open_rows = session.scalars(
            select(ClaimCode.code_id).where(ClaimCode.open).order_by(ClaimCode.code_id)
        ).all()
    expected = [placed.code_ids[0]] + ([placed.code_ids[1 + winner[0]]] if winner[0] % 2 else [])
    assert open_rows == expected  # the losers' own codes were not held
    # A loser's own code is free: it can be claimed on its own.
    loser = next(i for i in range(1, FILERS, 2) if i != winner[0])
    _file(client, shop.a.headers, placed.order_id, [own[loser]], RemedyKind.REFUND)
    assert _violations(db) == []


def test_concurrent_filings_naming_two_codes_in_opposite_orders(
    client: httpx.Client, live_server: LiveServer, shop: Shop, db: Database
) -> None:
    # Each pair of filers names the same two codes, one in each order: one claim wins, the
    # other is told the codes are already claimed (a clear 409, never a server error).
    placed = _place(client, db, shop.a.headers, 2)
    first, second = placed.codes

    def filer(index: int) -> httpx.Response:
        codes = [first, second] if index % 2 else [second, first]
        return _post(
            live_server.url,
            "/api/v1/claims",
            shop.a.headers,
            _claim_body(placed.order_id, codes, RemedyKind.REFUND),
        )

    responses = _together(FILERS, filer)
    outcome = Counter(response.status_code for response in responses)
    assert outcome == {201: 1, 409: FILERS - 1}, [r.text for r in responses]
    with db.read_session() as session:
        assert session.scalar(select(func.count()).select_from(ClaimCode)) == 2
    assert _violations(db) == []


# --- Approve racing cancel (and a remedy switch) ----------------------------------------------

ROUNDS = 4


def test_approve_racing_cancel_ends_one_way_or_the_other(
    client: httpx.Client, live_server: LiveServer, shop: Shop, db: Database, database_url: str
) -> None:
    placed = _place(client, db, shop.a.headers, ROUNDS)
    operator = operator_headers(db)
    refunded = 0
    for round_ in range(ROUNDS):
        remedy = RemedyKind.REFUND if round_ % 2 else RemedyKind.REPLACEMENT
        code, code_id = placed.codes[round_], placed.code_ids[round_]
        claim_id = _file(client, shop.a.headers, placed.order_id, [code], remedy)
        calls: list[tuple[str, dict[str, str], object]] = [
            (f"/api/v1/admin/claims/{claim_id}/approve", operator, {"reason": "ok"}),
            (f"/api/v1/claims/{claim_id}/cancel", shop.a.headers, None),
        ]
        approve, cancel = _together(2, lambda i: _post(live_server.url, *calls[i]))  # noqa: B023

        assert sorted([approve.status_code, cancel.status_code]) == [200, 409], (
            approve.text,
            cancel.text,
        )
        loser = approve if approve.status_code == 409 else cancel
        assert_problem(loser, 409, "claim-state-conflict")
        status = _claim_status(db, claim_id)
        if approve.status_code == 200:
            assert status == ClaimStatus.RESOLVED
            assert _states(db, [code_id]) == [CodeState.VOIDED]
            assert _remedies(db, [code_id]) == [(code_id, remedy, RemedyState.DONE)]
            refunded += PRICE if remedy == RemedyKind.REFUND else 0
        else:
            assert status == ClaimStatus.CANCELLED
            assert _states(db, [code_id]) == [CodeState.DELIVERED]
            assert _remedies(db, [code_id]) == []
        with db.read_session() as session:
            still_open = session.scalar(
                select(func.count()).where(ClaimCode.code_id == code_id, ClaimCode.open)
            )
        assert still_open == 0
    assert _wallet(db, shop.a.id) == 100_000 - ROUNDS * PRICE + refunded
    _assert_ledger_check_passes(database_url)


@pytest.mark.parametrize("first_acts", ["operator", "partner"])
def test_approve_and_cancel_in_either_order(
    client: httpx.Client, live_server: LiveServer, shop: Shop, db: Database, first_acts: str
) -> None:
    # Deterministic orderings of the race above: the first decision is held uncommitted while
    # the second request arrives and waits for it.
    placed = _place(client, db, shop.a.headers, 1)
    claim_id = _file(client, shop.a.headers, placed.order_id, placed.codes, RemedyKind.REFUND)
    operator = operator_headers(db)
    code_id = placed.code_ids[0]

    if first_acts == "operator":

        def approve_first(session: Session) -> None:
            assert (
                claims.approve(session, claim_id, OPERATOR, "verified").status
                == ClaimStatus.RESOLVED
            )

        cancel = second_while_first_is_open(
            db,
            approve_first,
            lambda: _post(live_server.url, f"/api/v1/claims/{claim_id}/cancel", shop.a.headers),
        )
        assert_problem(cancel, 409, "claim-state-conflict")
        assert _claim_status(db, claim_id) == ClaimStatus.RESOLVED
        assert _states(db, [code_id]) == [CodeState.VOIDED]
        assert _remedies(db, [code_id]) == [(code_id, RemedyKind.REFUND, RemedyState.DONE)]
        assert balance(client, shop.a.headers) == "1000.00"
    else:

        def cancel_first(session: Session) -> None:
            partner = partners.get_partner(session, shop.a.id)
            assert claims.cancel(session, partner, claim_id).status == ClaimStatus.CANCELLED

        approve = second_while_first_is_open(
            db,
            cancel_first,
            lambda: _post(
                live_server.url,
                f"/api/v1/admin/claims/{claim_id}/approve",
                operator,
                {"reason": "ok"},
            ),
        )
        assert_problem(approve, 409, "claim-state-conflict")
        assert _claim_status(db, claim_id) == ClaimStatus.CANCELLED
        assert _states(db, [code_id]) == [CodeState.DELIVERED]
        assert _remedies(db, [code_id]) == []
        assert balance(client, shop.a.headers) == "953.50"
    assert _violations(db) == []


@pytest.mark.parametrize("first_acts", ["operator", "partner"])
def test_approve_and_remedy_switch_in_either_order(
    client: httpx.Client, live_server: LiveServer, shop: Shop, db: Database, first_acts: str
) -> None:
    # The partner switches from replacement to refund while the operator approves: the code
    # gets the remedy chosen when the approval is made, exactly once.
    placed = _place(client, db, shop.a.headers, 1)
    claim_id = _file(client, shop.a.headers, placed.order_id, placed.codes, RemedyKind.REPLACEMENT)
    code_id = placed.code_ids[0]
    switch = f"/api/v1/claims/{claim_id}/remedy"
    if first_acts == "operator":

        def approve_first(session: Session) -> None:
            assert (
                claims.approve(session, claim_id, OPERATOR, "verified").status
                == ClaimStatus.RESOLVED
            )

        response = second_while_first_is_open(
            db,
            approve_first,
            lambda: _post(live_server.url, switch, shop.a.headers, {"remedy": "refund"}),
        )
        assert_problem(response, 409, "claim-state-conflict")  # resolved: the remedy is fixed
        assert _remedies(db, [code_id]) == [(code_id, RemedyKind.REPLACEMENT, RemedyState.DONE)]
        assert balance(client, shop.a.headers) == "953.50"
        assert len(_replacement_orders(db)) == 1
    else:
        operator = operator_headers(db)

        def switch_first(session: Session) -> None:
            partner = partners.get_partner(session, shop.a.id)
            claims.change_remedy(session, partner, claim_id, RemedyKind.REFUND)

        response = second_while_first_is_open(
            db,
            switch_first,
            lambda: _post(
                live_server.url,
                f"/api/v1/admin/claims/{claim_id}/approve",
                operator,
                {"reason": "ok"},
            ),
        )
        assert response.status_code == 200, response.text
        assert _remedies(db, [code_id]) == [(code_id, RemedyKind.REFUND, RemedyState.DONE)]
        assert balance(client, shop.a.headers) == "1000.00"
        assert _replacement_orders(db) == []
    assert _claim_status(db, claim_id) == ClaimStatus.RESOLVED
    assert _violations(db) == []


@pytest.mark.parametrize("filing_arrives", ["before the commit", "between its checks"])
def test_a_claim_filed_while_the_code_is_being_remedied_is_refused(
    client: httpx.Client, live_server: LiveServer, shop: Shop, db: Database, filing_arrives: str
) -> None:
    # The approval (refunded, claim resolved, code voided) is in flight when the partner files
    # again on the same code. Once the approval commits, the code has had its remedy: the new
    # claim must be refused (claim-already-open while it is held, code-already-remedied after),
    # never accepted as an open claim on a voided code, which no one could ever approve.
    #
    # "between its checks": the interleaving that once let a claim through on PostgreSQL: the
    # approval committing just after the filing looked for remedies (none yet) and before it
    # looked for open claims (none any more). The server would pause there, after its first read
    # of claim_remedies; the filing now locks the codes first and never gets there early.
    placed = _place(client, db, shop.a.headers, 1)
    claim_id = _file(client, shop.a.headers, placed.order_id, placed.codes, RemedyKind.REFUND)
    looked = threading.Event()
    committed = threading.Event()

    def pause_after_the_remedy_check(
        _connection: Any, _cursor: Any, statement: str, *_: Any
    ) -> None:
        lowered = statement.lower()
        reads_remedies = "claim_remedies" in lowered and lowered.lstrip().startswith("select")
        if reads_remedies and not committed.is_set():
            looked.set()
            committed.wait(timeout=20)

    server_engine = live_server.app.state.services.db.engine
    if filing_arrives == "between its checks":
        event.listen(server_engine, "after_cursor_execute", pause_after_the_remedy_check)
    try:
        with ThreadPoolExecutor(1) as pool:
            with db.session() as session:
                assert (
                    claims.approve(session, claim_id, OPERATOR, "verified").status
                    == ClaimStatus.RESOLVED
                )
                session.flush()
                future = pool.submit(
                    _post,
                    live_server.url,
                    "/api/v1/claims",
                    shop.a.headers,
                    _claim_body(placed.order_id, placed.codes, RemedyKind.REFUND),
                )
                wait_until_blocked(db, future)
                if filing_arrives == "between its checks" and not db.is_sqlite:
                    # The filing locks the claimed codes first, so it queues behind the
                    # approval before its checks: they can no longer straddle the commit.
                    assert not looked.is_set(), "the filing checked before the approval committed"
            committed.set()
            refiled = future.result(timeout=60)
    finally:
        committed.set()
        if event.contains(server_engine, "after_cursor_execute", pause_after_the_remedy_check):
            event.remove(server_engine, "after_cursor_execute", pause_after_the_remedy_check)

    assert refiled.status_code == 409, refiled.text
    assert refiled.json()["type"].endswith(("claim-already-open", "code-already-remedied"))
    with db.read_session() as session:
        assert session.scalar(select(func.count()).select_from(Claim)) == 1
    assert _remedies(db, placed.code_ids) == [
        (placed.code_ids[0], RemedyKind.REFUND, RemedyState.DONE)
    ]
    assert _violations(db) == []


# --- Replacements racing orders for the last codes --------------------------------------------

CLAIMS = 6
BUYERS = 6


def test_replacements_racing_orders_for_the_last_codes(
    client: httpx.Client,
    live_server: LiveServer,
    shop: Shop,
    db: Database,
    vault: Vault,
    database_url: str,
) -> None:
    # A holds CLAIMS codes, each in a replacement claim; B buys most of the rest, leaving 4.
    # Then the operator approves every claim while A and B each buy single codes: 12 callers
    # want the last 4 codes.
    singles = [_place(client, db, shop.a.headers, 1) for _ in range(CLAIMS)]
    claim_ids = [
        _file(client, shop.a.headers, placed.order_id, placed.codes, RemedyKind.REPLACEMENT)
        for placed in singles
    ]
    bulk = _place(client, db, shop.b.headers, 20 - CLAIMS - 4)  # 10 codes
    assert _available(db) == 4
    claimed_ids = [placed.code_ids[0] for placed in singles]
    operator = operator_headers(db)
    buyers = [shop.a, shop.b] * (BUYERS // 2)

    def act(index: int) -> httpx.Response:
        if index < CLAIMS:
            path = f"/api/v1/admin/claims/{claim_ids[index]}/approve"
            return _post(live_server.url, path, operator, {"reason": "verified"})
        with httpx.Client(base_url=live_server.url, timeout=120) as own_client:
            return order(own_client, buyers[index - CLAIMS].headers)

    responses = _together(CLAIMS + BUYERS, act)

    approvals, purchases = responses[:CLAIMS], responses[CLAIMS:]
    for response in approvals:
        assert response.status_code == 200, response.text
    resolved = [r.json()["id"] for r in approvals if r.json()["status"] == ClaimStatus.RESOLVED]
    waiting = [r.json()["id"] for r in approvals if r.json()["status"] == ClaimStatus.APPROVED]
    assert len(resolved) + len(waiting) == CLAIMS
    bought = [r for r in purchases if r.status_code == 201]
    for response in purchases:
        if response.status_code != 201:
            assert_problem(response, 409, "insufficient-stock")
    assert len(resolved) + len(bought) == 4 - _available(db)
    if waiting or len(bought) < BUYERS:
        assert _available(db) == 0  # someone went without only because stock ran out
    assert _states(db, claimed_ids) == [CodeState.VOIDED] * CLAIMS
    assert _violations(db) == []

    # Stock arrives: every waiting replacement is made.
    factories.load_codes(db, vault, shop.sku, 8)
    with db.session() as session:
        assert sorted(claims.fulfil_waiting(session, OPERATOR)) == sorted(waiting)
    for claim_id in claim_ids:
        assert _claim_status(db, claim_id) == ClaimStatus.RESOLVED
    with db.read_session() as session:
        remedies = session.execute(select(Remedy.code_id, Remedy.kind, Remedy.state)).all()
    assert sorted(remedies) == [
        (code_id, RemedyKind.REPLACEMENT, RemedyState.DONE) for code_id in sorted(claimed_ids)
    ]

    # Every code went out at most once, and no replacement is a claimed code.
    own: dict[str, list[str]] = {
        shop.a.id: [p.order_id for p in singles],
        shop.b.id: [bulk.order_id],
    }
    for response, buyer in zip(purchases, buyers, strict=True):
        if response.status_code == 201:
            own[buyer.id].append(response.json()["id"])
    replacement_ids = [order_id for order_id, _ in _replacement_orders(db)]
    assert sum(quantity for _, quantity in _replacement_orders(db)) == CLAIMS
    replacements = [code for r in replacement_ids for code in reveal(client, shop.a.headers, r)]
    delivered = list(replacements)
    for partner, headers in ((shop.a.id, shop.a.headers), (shop.b.id, shop.b.headers)):
        for order_id in own[partner]:
            delivered += reveal(client, headers, order_id)
    assert len(delivered) == len(set(delivered)), "a code was delivered twice"
    assert len(replacements) == CLAIMS
    assert not set(replacements) & {placed.codes[0] for placed in singles}
    assert len(delivered) == 20 + 8 - _available(db)
    with db.read_session() as session:
        per_item = session.execute(
            select(OrderItem.quantity, func.count(Code.id))
            .outerjoin(Code, Code.order_item_id == OrderItem.id)
            .group_by(OrderItem.id, OrderItem.quantity)
        ).all()
    assert all(quantity == codes for quantity, codes in per_item)
    bought_by_a = len(own[shop.a.id]) - CLAIMS
    bought_by_b = len(own[shop.b.id]) - 1
    assert balance(client, shop.a.headers) == _money(100_000 - PRICE * (CLAIMS + bought_by_a))
    assert balance(client, shop.b.headers) == _money(100_000 - PRICE * (10 + bought_by_b))
    _assert_ledger_check_passes(database_url)


# --- Crashes between steps --------------------------------------------------------------------


class CrashError(Exception):
    """The process dies (or the request fails) at this point."""


def _world(db: Database) -> tuple[Any, ...]:
    """Everything an approval could touch, to compare before and after a failed one."""
    with db.read_session() as session:
        return (
            tuple(session.execute(select(Claim.public_id, Claim.status, Claim.remedy)).all()),
            tuple(session.execute(select(ClaimCode.code_id, ClaimCode.open)).all()),
            tuple(session.execute(select(Code.id, Code.state, Code.order_item_id)).all()),
            session.scalar(select(func.count()).select_from(Remedy)),
            session.scalar(select(func.count()).select_from(LedgerTransaction)),
            session.scalar(select(func.count()).select_from(Order)),
            session.scalar(select(func.count()).select_from(AuditEvent)),
        )


@pytest.mark.parametrize("remedy", [RemedyKind.REFUND, RemedyKind.REPLACEMENT])
def test_an_approval_rolled_back_after_it_returned_leaves_no_trace(
    client: httpx.Client, shop: Shop, db: Database, remedy: str
) -> None:
    placed = _place(client, db, shop.a.headers, 2)
    claim_id = _file(client, shop.a.headers, placed.order_id, placed.codes, remedy)
    before = _world(db)

    with pytest.raises(CrashError), db.session() as session:
        approved = claims.approve(session, claim_id, OPERATOR, "verified")
        assert approved.status == ClaimStatus.RESOLVED  # done in the transaction, never committed
        raise CrashError

    assert _world(db) == before
    assert _claim_status(db, claim_id) == ClaimStatus.SUBMITTED
    assert _states(db, placed.code_ids) == [CodeState.DELIVERED, CodeState.DELIVERED]
    assert _remedies(db, placed.code_ids) == []
    assert _refunds(db) == 0 and _replacement_orders(db) == []
    assert balance(client, shop.a.headers) == "907.00"
    assert _violations(db) == []
    # Nothing is wedged: the approval can be made again, and then it holds.
    with db.session() as session:
        assert (
            claims.approve(session, claim_id, OPERATOR, "verified").status == ClaimStatus.RESOLVED
        )
    assert _remedies(db, placed.code_ids) == [
        (i, remedy, RemedyState.DONE) for i in placed.code_ids
    ]
    assert _violations(db) == []


def test_a_crash_between_two_refunds_of_one_approval_posts_neither(
    client: httpx.Client, shop: Shop, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first code's refund is posted, its code voided and remedy written; then the process
    # dies before the second code's refund.
    placed = _place(client, db, shop.a.headers, 2)
    claim_id = _file(client, shop.a.headers, placed.order_id, placed.codes, RemedyKind.REFUND)
    before = _world(db)
    real_refund = wallet.refund
    posted: list[str] = []

    def refund_then_die(*args: Any, **kwargs: Any) -> LedgerTransaction:
        if posted:
            raise CrashError
        txn = real_refund(*args, **kwargs)
        posted.append(txn.public_id)
        return txn

    monkeypatch.setattr(wallet, "refund", refund_then_die)
    with pytest.raises(CrashError), db.session() as session:
        claims.approve(session, claim_id, OPERATOR, "verified")
    monkeypatch.undo()

    assert len(posted) == 1
    assert _world(db) == before
    assert _refunds(db) == 0
    assert balance(client, shop.a.headers) == "907.00"
    assert _violations(db) == []


def test_a_crash_after_the_replacement_is_allocated_keeps_the_codes_in_stock(
    client: httpx.Client, shop: Shop, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    placed = _place(client, db, shop.a.headers, 1)
    claim_id = _file(client, shop.a.headers, placed.order_id, placed.codes, RemedyKind.REPLACEMENT)
    before = _world(db)
    real_place = orders.place_replacement

    def allocate_then_die(*args: Any, **kwargs: Any) -> Order:
        real_place(*args, **kwargs)
        raise CrashError

    monkeypatch.setattr(orders, "place_replacement", allocate_then_die)
    with pytest.raises(CrashError), db.session() as session:
        claims.approve(session, claim_id, OPERATOR, "verified")
    monkeypatch.undo()

    assert _world(db) == before
    assert _available(db) == 19
    assert _violations(db) == []


def test_an_approval_short_of_stock_waits_until_fulfil_waiting_after_an_import(
    client: httpx.Client, shop: Shop, db: Database, vault: Vault, database_url: str
) -> None:
    placed = _place(client, db, shop.a.headers, 2)
    _place(client, db, shop.b.headers, 18)  # the shop is sold out
    claim_id = _file(client, shop.a.headers, placed.order_id, placed.codes, RemedyKind.REPLACEMENT)
    operator = operator_headers(db)

    approved = client.post(
        f"/api/v1/admin/claims/{claim_id}/approve", json={"reason": "ok"}, headers=operator
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == ClaimStatus.APPROVED
    assert _states(db, placed.code_ids) == [
        CodeState.VOIDED,
        CodeState.VOIDED,
    ]  # out of the partner's hands now
    assert _remedies(db, placed.code_ids) == [
        (i, RemedyKind.REPLACEMENT, RemedyState.WAITING) for i in placed.code_ids
    ]
    assert _replacement_orders(db) == []
    resolve = client.post(f"/api/v1/admin/claims/{claim_id}/resolve", headers=operator)
    assert_problem(resolve, 409, "replacement-waiting-for-stock")
    assert _violations(db) == []

    # One code arrives: replacements are made all or none, so the claim keeps waiting.
    factories.load_codes(db, vault, shop.sku, 1)
    with db.session() as session:
        assert claims.fulfil_waiting(session, OPERATOR) == []
    assert _available(db) == 1 and _claim_status(db, claim_id) == ClaimStatus.APPROVED

    # A second arrives; the fulfilment is made and then lost to a crash before its commit.
    factories.load_codes(db, vault, shop.sku, 1)
    before = _world(db)
    with pytest.raises(CrashError), db.session() as session:
        assert claims.fulfil_waiting(session, OPERATOR) == [claim_id]
        raise CrashError
    assert _world(db) == before
    assert _available(db) == 2
    assert _remedies(db, placed.code_ids) == [
        (i, RemedyKind.REPLACEMENT, RemedyState.WAITING) for i in placed.code_ids
    ]

    # And made for good.
    with db.session() as session:
        assert claims.fulfil_waiting(session, OPERATOR) == [claim_id]
    assert _claim_status(db, claim_id) == ClaimStatus.RESOLVED
    assert _available(db) == 0
    assert _states(db, placed.code_ids) == [CodeState.VOIDED, CodeState.VOIDED]
    assert [quantity for _, quantity in _replacement_orders(db)] == [2]
    [(replacement_id, _)] = _replacement_orders(db)
    fresh = reveal(client, shop.a.headers, replacement_id)
    assert len(set(fresh)) == 2 and not set(fresh) & set(placed.codes)
    assert balance(client, shop.a.headers) == "907.00"
    _assert_ledger_check_passes(database_url)


def test_stock_arriving_while_the_partner_switches_a_waiting_claim_to_refund(
    client: httpx.Client,
    live_server: LiveServer,
    shop: Shop,
    db: Database,
    vault: Vault,
    database_url: str,
) -> None:
    # A waiting replacement, stock arrives, and at once the operator resolves while the
    # partner asks for a refund instead: the codes get one remedy or the other, never both.
    placed = _place(client, db, shop.a.headers, 2)
    _place(client, db, shop.b.headers, 18)
    claim_id = _file(client, shop.a.headers, placed.order_id, placed.codes, RemedyKind.REPLACEMENT)
    operator = operator_headers(db)
    assert (
        client.post(
            f"/api/v1/admin/claims/{claim_id}/approve", json={"reason": "ok"}, headers=operator
        ).json()["status"]
        == ClaimStatus.APPROVED
    )
    factories.load_codes(db, vault, shop.sku, 2)
    calls: list[tuple[str, dict[str, str], object]] = [
        (f"/api/v1/admin/claims/{claim_id}/resolve", operator, None),
        (f"/api/v1/claims/{claim_id}/remedy", shop.a.headers, {"remedy": "refund"}),
    ]

    resolve, switch = _together(2, lambda i: _post(live_server.url, *calls[i]))

    assert sorted([resolve.status_code, switch.status_code]) == [200, 409], (
        resolve.text,
        switch.text,
    )
    assert_problem(resolve if resolve.status_code == 409 else switch, 409, "claim-state-conflict")
    assert _claim_status(db, claim_id) == ClaimStatus.RESOLVED
    kinds = {kind for _, kind, _ in _remedies(db, placed.code_ids)}
    assert len(_remedies(db, placed.code_ids)) == 2
    if resolve.status_code == 200:
        assert kinds == {RemedyKind.REPLACEMENT}
        assert _available(db) == 0 and _refunds(db) == 0
        assert balance(client, shop.a.headers) == "907.00"
    else:
        assert kinds == {RemedyKind.REFUND}
        assert _available(db) == 2 and _replacement_orders(db) == []
        assert balance(client, shop.a.headers) == "1000.00"
    _assert_ledger_check_passes(database_url)
