from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from codeshelf.api.deps import PrincipalDep, ServicesDep
from codeshelf.kit import paging
from codeshelf.kit.errors import InvalidInputError
from codeshelf.kit.money import InvalidMoneyError, Money, normalize_currency
from codeshelf.kit.schemas import MoneyOut
from codeshelf.orders import service as orders
from codeshelf.wallet import service
from codeshelf.wallet.schemas import (
    Balance,
    LedgerEntryOut,
    LedgerPage,
    LowBalanceAlertIn,
    LowBalanceAlerts,
)

router = APIRouter(tags=["wallet"])


@router.get("/balance", response_model=Balance)
async def get_balance(principal: PrincipalDep, services: ServicesDep) -> Balance:
    """The available balance in each currency the partner holds, and what is held."""
    found = await service.all_balances_async(services.db.reads, principal.partner.id)
    return Balance(
        data=[MoneyOut.of(money) for money in found.available],
        held=[MoneyOut.of(money) for money in found.held],
    )


def _currency(value: str, pointer: str) -> str:
    try:
        return normalize_currency(value)
    except InvalidMoneyError as exc:
        raise InvalidInputError(str(exc), pointer=pointer) from exc


@router.get("/balance/alerts", response_model=LowBalanceAlerts)
def get_low_balance_alerts(principal: PrincipalDep, services: ServicesDep) -> LowBalanceAlerts:
    """The thresholds below which a debit emits the `balance.low` webhook."""
    with services.db.read_session() as session:
        alerts = service.low_balance_alerts(session, principal.partner.id)
    return LowBalanceAlerts(data=[MoneyOut.of(money) for money in alerts])


@router.put("/balance/alerts/{currency}", response_model=LowBalanceAlerts)
def set_low_balance_alert(
    currency: str, body: LowBalanceAlertIn, principal: PrincipalDep, services: ServicesDep
) -> LowBalanceAlerts:
    """Emit `balance.low` whenever a debit or hold takes this currency's balance below `below`."""
    code = _currency(currency, "path:currency")
    try:
        below = Money.parse(body.below, code)
    except InvalidMoneyError as exc:
        raise InvalidInputError(str(exc), pointer="#/below") from exc
    with services.db.session() as session:
        service.set_low_balance_alert(session, principal.partner, code, below)
    return get_low_balance_alerts(principal, services)


@router.delete("/balance/alerts/{currency}", status_code=204)
def delete_low_balance_alert(currency: str, principal: PrincipalDep, services: ServicesDep) -> None:
    """Stop the `balance.low` alert for this currency."""
    code = _currency(currency, "path:currency")
    with services.db.session() as session:
        service.set_low_balance_alert(session, principal.partner, code, None)


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
        currency = _currency(currency, "query:currency")
    with services.db.read_session() as session:
        entries = service.ledger_entries(
            session,
            principal.partner.id,
            after=cursor,
            limit=paging.fetch_size(limit),
            currency=currency,
        )
        entries, next_cursor = paging.cut(entries, limit, lambda entry: entry.id)
        order_ids = orders.public_ids(session, {e.order_id for e in entries if e.order_id})
    data = [
        LedgerEntryOut(
            id=entry.id,
            type=entry.kind,
            amount=MoneyOut.of(entry.amount),
            balance_after=MoneyOut.of(entry.balance_after),
            order_id=order_ids.get(entry.order_id or 0),
            reference=entry.reference,
            created_at=entry.created_at,
        )
        for entry in entries
    ]
    return LedgerPage(data=data, next_cursor=next_cursor)
