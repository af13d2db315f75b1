from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from codeshelf.api.deps import PrincipalDep, ServicesDep
from codeshelf.errors import InvalidInputError
from codeshelf.money import InvalidMoneyError, normalize_currency
from codeshelf.schemas import MoneyOut
from codeshelf.wallet import service
from codeshelf.wallet.schemas import Balance, LedgerEntryOut, LedgerPage

router = APIRouter(tags=["wallet"])


@router.get("/balance", response_model=Balance)
def get_balance(principal: PrincipalDep, services: ServicesDep) -> Balance:
    """The available balance in each currency the partner holds."""
    with services.db.read_session() as session:
        balances = service.balances(session, principal.partner.id)
    return Balance(data=[MoneyOut.of(money) for money in balances])


@router.get("/ledger", response_model=LedgerPage)
def get_ledger(
    principal: PrincipalDep,
    services: ServicesDep,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    currency: str | None = None,
) -> LedgerPage:
    """Wallet entries, oldest first, each with the balance after it."""
    if currency is not None:
        try:
            currency = normalize_currency(currency)
        except InvalidMoneyError as exc:
            raise InvalidInputError(str(exc), pointer="query:currency") from exc
    with services.db.read_session() as session:
        entries = service.ledger_entries(
            session,
            principal.partner.id,
            after=cursor,
            limit=limit,
            currency=currency,
        )
    data = [
        LedgerEntryOut(
            id=entry.id,
            type=entry.kind,
            amount=MoneyOut.of(entry.amount),
            balance_after=MoneyOut.of(entry.balance_after),
            order_id=entry.order_public_id,
            reference=entry.reference,
            created_at=entry.created_at,
        )
        for entry in entries
    ]
    next_cursor = entries[-1].id if len(entries) == limit else None
    return LedgerPage(data=data, next_cursor=next_cursor)
