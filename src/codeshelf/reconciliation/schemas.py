from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field

from codeshelf.kit import csvs
from codeshelf.kit.schemas import MoneyOut
from codeshelf.reconciliation.service import DailyReport, OperatorDay
from codeshelf.wallet.service import CurrencyFigures


class CurrencyFiguresOut(BaseModel):
    currency: str
    opening: MoneyOut = Field(description="Available balance at 00:00 UTC.")
    deposits: MoneyOut
    order_debits: MoneyOut = Field(description="Orders paid straight from the wallet (negative).")
    holds: MoneyOut = Field(description="Money set aside for pending orders (negative).")
    releases: MoneyOut = Field(description="Holds given back when pending orders failed.")
    refunds: MoneyOut = Field(description="Claims refunded to the wallet.")
    closing: MoneyOut = Field(
        description="Available balance at 24:00 UTC: opening plus the five movements."
    )
    held_opening: MoneyOut
    captured: MoneyOut = Field(description="Holds that paid for orders delivered (negative).")
    held_closing: MoneyOut

    @classmethod
    def of(cls, figures: CurrencyFigures) -> CurrencyFiguresOut:
        return cls(
            currency=figures.currency,
            **{name: MoneyOut.of(money) for name, money in figures.money().items()},
        )


class ReconciledOrder(BaseModel):
    order_id: str
    client_order_id: str | None
    status: str
    amount: MoneyOut
    created_at: datetime


class Reconciliation(BaseModel):
    date: date
    timezone: str = "UTC"
    currencies: list[CurrencyFiguresOut]
    orders: list[ReconciledOrder] = Field(
        description="Orders created that day, and earlier orders whose money moved that day."
    )

    @classmethod
    def of(cls, report: DailyReport) -> Reconciliation:
        return cls(
            date=report.day,
            currencies=[CurrencyFiguresOut.of(line) for line in report.currencies],
            orders=[
                ReconciledOrder(
                    order_id=line.order_id,
                    client_order_id=line.client_order_id,
                    status=line.status,
                    amount=MoneyOut.of(line.amount),
                    created_at=line.created_at,
                )
                for line in report.orders
            ],
        )

    def as_csv(self) -> str:
        """One table: a row per figure and currency, then a row per order."""
        figures = [
            [name, line.currency, value["amount"], "", "", "", ""]
            for line in self.currencies
            for name, value in line.model_dump(exclude={"currency"}).items()
        ]
        orders = [
            [
                "order",
                order.amount.currency,
                order.amount.amount,
                order.order_id,
                order.client_order_id or "",
                order.status,
                order.created_at.isoformat(),
            ]
            for order in self.orders
        ]
        return csvs.table(CSV_COLUMNS, [*figures, *orders], typed={"client_order_id"})


CSV_COLUMNS = [
    "record",
    "currency",
    "amount",
    "order_id",
    "client_order_id",
    "status",
    "created_at",
]


class OperatorLineOut(BaseModel):
    partner_id: str
    name: str
    figures: CurrencyFiguresOut
    delivered: MoneyOut = Field(description="What the partner's orders delivered that day cost.")
    mismatch: bool = Field(description="This line's own cross-checks failed (see `problems`).")
    problems: list[str] = Field(
        description="Running balances that do not chain up; delivered orders not paid exactly."
    )


class OperatorReconciliation(BaseModel):
    date: date
    timezone: str = "UTC"
    ok: bool = Field(description="No line has a mismatch and `mismatches` is empty.")
    lines: list[OperatorLineOut] = Field(description="A line per live partner and currency.")
    mismatches: list[str] = Field(
        description="The day's ledger checked against its orders, delivered codes and imports."
    )

    @classmethod
    def of(cls, report: OperatorDay) -> OperatorReconciliation:
        return cls(
            date=report.day,
            ok=report.ok,
            lines=[
                OperatorLineOut(
                    partner_id=line.partner_id,
                    name=line.name,
                    figures=CurrencyFiguresOut.of(line.figures),
                    delivered=MoneyOut.of(line.delivered),
                    mismatch=line.mismatch,
                    problems=line.problems,
                )
                for line in report.lines
            ],
            mismatches=report.mismatches,
        )
