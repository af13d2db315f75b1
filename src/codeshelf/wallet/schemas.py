from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from codeshelf.kit.schemas import MoneyOut, Page, Text
from codeshelf.wallet.service import DepositOutcome, RequestedDeposit


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


# The operator API (/api/v1/admin): deposits under four eyes.

DepositStatusName = Literal["pending", "approved", "declined"]


class DepositIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: str = Field(pattern=r"^[0-9]{1,15}(\.[0-9]{1,4})?$", examples=["5000.00"])
    currency: str = Field(min_length=3, max_length=3, examples=["USD"])
    reference: Text = Field(
        min_length=1,
        max_length=128,
        examples=["WIRE-2026-11-24-001"],
        description="The bank transfer's id: one deposit per reference, ever (a repeat changes "
        "nothing).",
    )


class DeclineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: Text = Field(min_length=1, max_length=500, description="Why; kept with the request.")


class DepositRequestOut(BaseModel):
    id: str
    partner_id: str
    partner_name: str
    amount: MoneyOut
    reference: str
    status: DepositStatusName
    requested_by: str = Field(description="Who asked, as the audit log names them.")
    requested_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    note: str | None = Field(description="Why it was declined.")
    transaction_id: str | None = Field(
        description="The deposit's ledger transaction, once approved."
    )

    @classmethod
    def of(cls, request: RequestedDeposit) -> DepositRequestOut:
        return cls(
            id=request.id,
            partner_id=request.partner_id,
            partner_name=request.partner_name,
            amount=MoneyOut.of(request.amount),
            reference=request.reference,
            status=request.status,
            requested_by=request.requested_by,
            requested_at=request.requested_at,
            decided_by=request.decided_by,
            decided_at=request.decided_at,
            note=request.note,
            transaction_id=request.transaction_id,
        )


class DepositRequestPage(BaseModel):
    data: list[DepositRequestOut]


class DepositOut(BaseModel):
    status: Literal["credited", "pending"] = Field(
        description="`credited`: in the wallet now; `pending`: waits for a second person."
    )
    created: bool = Field(description="False when an earlier call with this reference did it.")
    transaction_id: str | None = Field(description="The ledger transaction, once credited.")
    balance: MoneyOut | None = Field(description="The wallet's balance after the credit.")
    request: DepositRequestOut | None = Field(
        description="The four-eyes request, for a deposit above the approval threshold."
    )

    @classmethod
    def of(cls, outcome: DepositOutcome) -> DepositOut:
        credited = outcome.credited
        return cls(
            status="pending" if credited is None else "credited",
            created=outcome.created,
            transaction_id=None if credited is None else credited.transaction.public_id,
            balance=None if credited is None else MoneyOut.of(credited.balance),
            request=None if outcome.request is None else DepositRequestOut.of(outcome.request),
        )
