"""The operator API's partner documents (/api/v1/admin/partners)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from codeshelf.catalog.service import PartnerPriceLine
from codeshelf.dossier.service import KeyLine, PartnerDetail, PartnerSummary, PersonLine
from codeshelf.kit.schemas import MoneyOut, Text
from codeshelf.wallet.schemas import DepositRequestOut

AMOUNT = r"^[0-9]{1,12}(\.[0-9]{1,4})?$"


class PartnerOpenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text = Field(min_length=1, max_length=200, examples=["Acme Games"])
    owner_email: str = Field(
        max_length=254, examples=["dana@acme.example"], description="Invited as the owner."
    )
    rate_limit_per_minute: int | None = Field(
        default=None, ge=1, description="Per key; null: `CODESHELF_RATE_LIMIT_PER_MINUTE`."
    )


class PriceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    price: str = Field(
        pattern=AMOUNT, examples=["44.25"], description="In the product's price currency."
    )


class MoneyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: str = Field(pattern=AMOUNT, examples=["5000.00"])
    currency: str = Field(min_length=3, max_length=3, examples=["USD"])


class ReviewLimitsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quantity_over: int | None = Field(
        default=None, ge=1, description="Review orders of more codes (null: the default)."
    )
    amount_over: MoneyIn | None = Field(
        default=None, description="Review orders costing more (null: the default)."
    )


class RateLimitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    per_minute: int | None = Field(
        ge=1, description="Requests a minute per key; null: `CODESHELF_RATE_LIMIT_PER_MINUTE`."
    )


class PartnerSummaryOut(BaseModel):
    id: str
    name: str
    created_at: datetime
    available: list[MoneyOut] = Field(description="Per currency.")
    held: list[MoneyOut] = Field(description="Set aside for pending orders, per currency.")
    open_claims: int
    active_keys: int = Field(description="Live and sandbox keys not revoked.")
    pending_deposits: int = Field(description="Deposits waiting for a second person.")

    @classmethod
    def of(cls, summary: PartnerSummary) -> PartnerSummaryOut:
        return cls(
            id=summary.partner_id,
            name=summary.name,
            created_at=summary.created_at,
            available=[MoneyOut.of(m) for m in summary.available],
            held=[MoneyOut.of(m) for m in summary.held],
            open_claims=summary.open_claims,
            active_keys=summary.active_keys,
            pending_deposits=summary.pending_deposits,
        )


class PartnerPage(BaseModel):
    data: list[PartnerSummaryOut]


class PartnerPriceOut(BaseModel):
    sku: str
    price: MoneyOut = Field(description="What this partner pays.")
    default: MoneyOut = Field(description="The product's price for everyone else.")

    @classmethod
    def of(cls, line: PartnerPriceLine) -> PartnerPriceOut:
        return cls(sku=line.sku, price=MoneyOut.of(line.price), default=MoneyOut.of(line.default))


class KeyOut(BaseModel):
    id: str
    mode: str = Field(description="`live`, or `test` (the partner's sandbox).")
    prefix: str = Field(description="The key's first characters (never the key).")
    created_at: datetime
    last_used_at: datetime | None = Field(description="To the minute.")
    revoked_at: datetime | None

    @classmethod
    def of(cls, key: KeyLine) -> KeyOut:
        return cls(
            id=key.key_id,
            mode=key.mode,
            prefix=key.prefix,
            created_at=key.created_at,
            last_used_at=key.last_used_at,
            revoked_at=key.revoked_at,
        )


class PersonOut(BaseModel):
    member_id: str | None = Field(description="Null for an invitation not yet accepted.")
    email: str
    role: str
    since: datetime
    invitation_expires_at: datetime | None = None

    @classmethod
    def of(cls, person: PersonLine) -> PersonOut:
        return cls(
            member_id=person.member_id,
            email=person.email,
            role=person.role,
            since=person.since,
            invitation_expires_at=person.invitation_expires_at,
        )


class ReviewLimitsOut(BaseModel):
    quantity_over: int | None = Field(description="Null: `CODESHELF_REVIEW_QUANTITY_OVER`.")
    amount_over: MoneyOut | None


class RateLimitOut(BaseModel):
    per_minute: int | None = Field(description="The partner's own; null: the default.")
    effective_per_minute: int = Field(description="What its keys get now.")


class PartnerDetailOut(BaseModel):
    id: str
    name: str
    created_at: datetime
    rate_limit: RateLimitOut
    review_limits: ReviewLimitsOut
    available: list[MoneyOut]
    held: list[MoneyOut]
    credit_limits: list[MoneyOut] = Field(description="Wallets that may go below zero, how far.")
    low_balance_alerts: list[MoneyOut]
    prices: list[PartnerPriceOut] = Field(description="Its own prices (others: the default).")
    keys: list[KeyOut]
    members: list[PersonOut]
    invitations: list[PersonOut] = Field(description="Open invitations.")
    claims: dict[str, int] = Field(description="Claims by status.")
    open_claims: int
    pending_deposits: list[DepositRequestOut]

    @classmethod
    def of(cls, detail: PartnerDetail, default_rate_limit: int) -> PartnerDetailOut:
        amount = detail.review.amount_over
        return cls(
            id=detail.partner_id,
            name=detail.name,
            created_at=detail.created_at,
            rate_limit=RateLimitOut(
                per_minute=detail.rate_limit_per_minute,
                effective_per_minute=detail.rate_limit_per_minute or default_rate_limit,
            ),
            review_limits=ReviewLimitsOut(
                quantity_over=detail.review.quantity_over,
                amount_over=None if amount is None else MoneyOut.of(amount),
            ),
            available=[MoneyOut.of(m) for m in detail.available],
            held=[MoneyOut.of(m) for m in detail.held],
            credit_limits=[MoneyOut.of(m) for m in detail.credit_limits],
            low_balance_alerts=[MoneyOut.of(m) for m in detail.low_balance_alerts],
            prices=[PartnerPriceOut.of(line) for line in detail.prices],
            keys=[KeyOut.of(key) for key in detail.keys],
            members=[PersonOut.of(person) for person in detail.members],
            invitations=[PersonOut.of(person) for person in detail.invitations],
            claims=detail.claims,
            open_claims=detail.open_claims,
            pending_deposits=[DepositRequestOut.of(r) for r in detail.pending_deposits],
        )


class InvitationOut(BaseModel):
    email: str
    role: str
    expires_at: datetime
    link: str = Field(description="Shown once: pass it to the owner.")


class OpenedPartnerOut(BaseModel):
    partner: PartnerDetailOut
    invitation: InvitationOut
