from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from codeshelf.kit.schemas import MoneyOut


class TopUpIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: str = Field(pattern=r"^[0-9]{1,12}(\.[0-9]{1,4})?$", examples=["500.00"])
    currency: str = Field(min_length=3, max_length=3, examples=["USD"])


class TopUpOut(BaseModel):
    transaction_id: str
    balance: MoneyOut


class Restocked(BaseModel):
    delivered_order_ids: list[str]


class SandboxReview(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject"]


class TriggerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event: str = Field(examples=["order.fulfilled"])


class TriggerOut(BaseModel):
    event_id: str
