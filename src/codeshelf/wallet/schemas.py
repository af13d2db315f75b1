from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from codeshelf.schemas import MoneyOut, Page


class Balance(BaseModel):
    data: list[MoneyOut]


class LedgerEntryOut(BaseModel):
    id: str
    transaction_id: str
    type: str
    amount: MoneyOut
    balance_after: MoneyOut
    order_id: str | None
    reference: str | None
    created_at: datetime


class LedgerPage(Page):
    data: list[LedgerEntryOut]
