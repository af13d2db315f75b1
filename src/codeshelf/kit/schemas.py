"""Schemas shared by every domain's API: money and pagination."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, Field

from codeshelf.kit.money import Money

# Printable text: no control character (C0, DEL, C1; PostgreSQL refuses NUL), and none of the
# invisible characters that make text show in another order than it is stored or hide what it
# holds: bidi embeddings, overrides and isolates, zero-width characters, the byte-order mark.
PRINTABLE = r"^[^\x00-\x1f\x7f-\x9f" + "\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff" + "]*$"
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


def _in_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:59:59-23:59 is past the last UTC instant Python has
        raise ValueError("the time is out of range once converted to UTC") from None


# A time with its offset, as UTC; one that UTC cannot hold is a 422, not a 500.
UTCDateTime = Annotated[AwareDatetime, AfterValidator(_in_utc)]
