from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from codeshelf.kit.schemas import MoneyOut, Page


class Balance(BaseModel):
    data: list[MoneyOut] = Field(description="Available to spend, per currency.")
    held: list[MoneyOut] = Field(
        description="Set aside for pending orders (backorders, orders under review), per "
        "currency: spent if they are delivered, back in `data` if they fail."
    )


class LowBalanceAlertIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    below: str = Field(
        pattern=r"^[0-9]{1,12}(\.[0-9]{1,4})?$",
        examples=["500.00"],
        description="Emit `balance.low` when a debit takes the balance below this amount.",
    )


class LowBalanceAlerts(BaseModel):
    data: list[MoneyOut] = Field(description="The alert threshold of each currency that has one.")


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
