from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from codeshelf.schemas import MoneyOut, Page


class Balance(BaseModel):
    data: list[MoneyOut]


class LedgerEntryOut(BaseModel):
    id: str = Field(description="The ledger transaction's id; pass it as `cursor` to continue.")
    type: str
    amount: MoneyOut
    balance_after: MoneyOut
    order_id: str | None
    reference: str | None
    created_at: datetime


class LedgerPage(Page):
    data: list[LedgerEntryOut]
