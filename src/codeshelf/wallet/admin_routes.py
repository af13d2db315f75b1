"""The operator's deposits API under /api/v1/admin, for operator keys only: four eyes.

The person an operator key acts as is the key's operator (``operator:<name>``): a deposit a key
asked for above its currency's threshold is approved or declined with another operator's key.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from codeshelf.api.deps import OperatorDep, ServicesDep
from codeshelf.kit.clock import utcnow
from codeshelf.kit.errors import InvalidInputError
from codeshelf.kit.money import InvalidMoneyError, Money
from codeshelf.operators.service import actor_name
from codeshelf.partners import service as partners
from codeshelf.wallet import service
from codeshelf.wallet.schemas import (
    DeclineIn,
    DepositIn,
    DepositOut,
    DepositRequestOut,
    DepositRequestPage,
)

router = APIRouter(prefix="/admin", tags=["admin: deposits"])


def _money(body: DepositIn) -> Money:
    try:
        return Money.parse(body.amount, body.currency)
    except InvalidMoneyError as exc:
        pointer = "#/currency" if "currency" in str(exc) else "#/amount"
        raise InvalidInputError(str(exc), pointer=pointer) from exc


@router.post(
    "/partners/{partner_id}/deposits",
    response_model=DepositOut,
    status_code=201,
    summary="Deposit into a partner's wallet (or ask a second operator to)",
    responses={
        200: {"model": DepositOut, "description": "Already credited under this reference"},
        202: {"model": DepositOut, "description": "Above the threshold: waits for approval"},
    },
)
def deposit(
    partner_id: str,
    body: DepositIn,
    response: Response,
    operator: OperatorDep,
    services: ServicesDep,
) -> DepositOut:
    """Credit the wallet at once (201; 200 when this reference was already credited) if the
    amount is at or below `CODESHELF_DEPOSIT_APPROVAL_OVER` for its currency, or the currency
    has no threshold; else file a request that another operator approves (202)."""
    money = _money(body)
    thresholds = services.settings.deposit_thresholds()
    with services.db.session() as session:
        partner = partners.get_partner(session, partner_id)
        outcome = service.ask_deposit(
            session, partner, money, body.reference, actor_name(operator), thresholds, utcnow()
        )
    response.status_code = 202 if outcome.pending else 201 if outcome.created else 200
    return DepositOut.of(outcome)


@router.get(
    "/deposits",
    response_model=DepositRequestPage,
    summary="List deposit requests (the four-eyes queue)",
)
def deposit_requests(
    operator: OperatorDep,
    services: ServicesDep,
    status: Literal["pending", "approved", "declined"] | None = None,
    partner_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
) -> DepositRequestPage:
    """Deposit requests, newest first; `status=pending` is the queue, oldest first."""
    with services.db.read_session() as session:
        owner = None if partner_id is None else partners.get_partner(session, partner_id).id
        found = service.deposit_requests(session, status=status, partner_id=owner, limit=limit)
    return DepositRequestPage(data=[DepositRequestOut.of(request) for request in found])


@router.get(
    "/deposits/{request_id}",
    response_model=DepositRequestOut,
    summary="Show a deposit request",
)
def deposit_request(
    request_id: str, operator: OperatorDep, services: ServicesDep
) -> DepositRequestOut:
    with services.db.read_session() as session:
        return DepositRequestOut.of(service.get_deposit_request(session, request_id))


@router.post(
    "/deposits/{request_id}/approve",
    response_model=DepositOut,
    summary="Approve a pending deposit (a second operator)",
)
def approve(request_id: str, operator: OperatorDep, services: ServicesDep) -> DepositOut:
    """Credit the wallet. Refused (403 `four-eyes`) to the operator who asked, and (409) once
    the request is decided."""
    with services.db.session() as session:
        outcome = service.approve_deposit(session, request_id, actor_name(operator), utcnow())
    return DepositOut.of(outcome)


@router.post(
    "/deposits/{request_id}/decline",
    response_model=DepositRequestOut,
    summary="Decline a pending deposit (a second operator)",
)
def decline(
    request_id: str, body: DeclineIn, operator: OperatorDep, services: ServicesDep
) -> DepositRequestOut:
    """Nothing is credited; the note says why. Refused (403 `four-eyes`) to the operator who
    asked, and (409) once the request is decided."""
    with services.db.session() as session:
        declined = service.decline_deposit(
            session, request_id, actor_name(operator), body.note, utcnow()
        )
    return DepositRequestOut.of(declined)
