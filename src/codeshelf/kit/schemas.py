"""Schemas shared by every domain's API: money and pagination."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from codeshelf.kit.money import Money

# Printable text: no NUL or other control characters (PostgreSQL refuses NUL in text).
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
Text = Annotated[str, Field(pattern=PRINTABLE)]


class MoneyOut(BaseModel):
    amount: str = Field(description="Exact decimal string in the currency's minor-unit precision.")
    currency: str = Field(description="ISO 4217 code.")

    @classmethod
    def of(cls, money: Money) -> MoneyOut:
        return cls(amount=money.amount, currency=money.currency)


class Page(BaseModel):
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )
