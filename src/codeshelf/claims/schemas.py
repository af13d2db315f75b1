from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from codeshelf.catalog.codes import mask
from codeshelf.claims import policy as rules
from codeshelf.claims import service
from codeshelf.claims.evidence import Screenshot
from codeshelf.claims.models import Claim, ClaimCode, ClaimStatus, RemedyKind
from codeshelf.kit.clock import utcnow
from codeshelf.kit.money import Money
from codeshelf.kit.schemas import PRINTABLE, MoneyOut, Page, UTCDateTime
from codeshelf.kit.vault import Vault
from codeshelf.partners.models import Partner

Problem = Literal[
    "invalid",
    "already_redeemed",
    "wrong_region",
    "technical_failure",
    "not_delivered",
    "account_restricted",
]
Region = Annotated[str, Field(min_length=2, max_length=2, pattern=PRINTABLE, examples=["US"])]
ErrorCode = Annotated[
    str, Field(min_length=3, max_length=32, pattern=PRINTABLE, examples=["WS-37432-9"])
]
CodeText = Annotated[str, Field(min_length=1, max_length=64, pattern=PRINTABLE)]


class ClaimedCodeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: CodeText = Field(description="The code as delivered (case and hyphens are ignored).")
    problem: Problem | None = Field(default=None, description="Overrides the claim's problem.")
    code_region: Region | None = Field(
        default=None, description="For wrong_region: the region PSN reported for the code."
    )
    error_code: ErrorCode | None = None


class RedemptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account_region: Region | None = Field(
        default=None, description="The region of the PSN account the code was tried on."
    )
    attempted_at: UTCDateTime | None = Field(
        default=None, description="When it was tried (with a time zone); not before delivery."
    )
    exposed_publicly: bool = Field(
        default=False, description="Was the code shown publicly (stream, chat, marketplace)?"
    )

    def as_redemption(self, error_code: str | None) -> service.Redemption:
        return service.Redemption(
            account_region=self.account_region,
            attempted_at=self.attempted_at,
            error_code=error_code,
            exposed_publicly=self.exposed_publicly,
        )


def _codes(codes: list[str | ClaimedCodeIn]) -> list[service.CodeClaimInput]:
    result = []
    for index, entry in enumerate(codes):
        pointer = f"#/codes/{index}"
        if isinstance(entry, str):
            result.append(service.CodeClaimInput(code=entry, pointer=pointer))
        else:
            result.append(
                service.CodeClaimInput(
                    code=entry.code,
                    pointer=pointer,
                    problem=entry.problem,
                    code_region=entry.code_region,
                    error_code=entry.error_code,
                )
            )
    return result


class ClaimCreate(BaseModel):
    """A claim on one or more codes of one order."""

    model_config = ConfigDict(extra="forbid")

    order_id: Annotated[str, Field(min_length=1, max_length=64, pattern=PRINTABLE)]
    codes: list[CodeText | ClaimedCodeIn] = Field(min_length=1, max_length=service.MAX_CODES)
    problem: Problem
    remedy: Literal["replacement", "refund"] = "replacement"
    error_code: ErrorCode | None = Field(default=None, description="The PSN error code shown.")
    redemption: RedemptionIn = Field(default_factory=RedemptionIn)
    description: str | None = Field(default=None, max_length=2000, pattern=PRINTABLE)

    def as_input(self, screenshots: list[Screenshot]) -> service.ClaimInput:
        return service.ClaimInput(
            order_id=self.order_id,
            codes=_codes(self.codes),
            problem=self.problem,
            remedy=self.remedy,
            redemption=self.redemption.as_redemption(self.error_code),
            description=self.description,
            screenshots=screenshots,
        )


class EvidenceRedemptionIn(RedemptionIn):
    exposed_publicly: bool | None = Field(  # type: ignore[assignment]
        default=None, description="Set only if it changed: was the code shown publicly?"
    )


class EvidenceCreate(BaseModel):
    """More evidence for a claim: any of these, and/or screenshots (multipart)."""

    model_config = ConfigDict(extra="forbid")

    error_code: ErrorCode | None = None
    redemption: EvidenceRedemptionIn = Field(default_factory=EvidenceRedemptionIn)
    codes: list[ClaimedCodeIn] = Field(default_factory=list, max_length=service.MAX_CODES)
    note: str | None = Field(default=None, max_length=2000, pattern=PRINTABLE)

    def as_input(self, screenshots: list[Screenshot]) -> service.EvidenceInput:
        return service.EvidenceInput(
            redemption=self.redemption.as_redemption(self.error_code),
            codes=_codes(list(self.codes)),
            screenshots=screenshots,
            note=self.note,
        )


class RemedyChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    remedy: Literal["replacement", "refund"]


class RemedyOut(BaseModel):
    kind: str = Field(description=f"One of {', '.join(tuple(RemedyKind))}.")
    state: str = Field(description="`waiting` (for stock) or `done`.")
    refunded: MoneyOut | None = None
    replacement_order_id: str | None = None


class VerdictOut(BaseModel):
    position: int = Field(
        description="The code's place in the claim (1, 2, …): how an operator's decision names it."
    )
    code: str = Field(description="Masked: only the last four characters are shown.")
    problem: str
    classification: str = Field(description="`delivery`, `wrong_region` or `code`.")
    verdict: str = Field(description="`eligible`, `not_covered` or `needs_evidence`.")
    rule: str | None = Field(description="The policy rule that decided.")
    rule_text: str | None
    missing: list[str] = Field(description="Evidence still needed (needs_evidence).")
    code_region: str | None = Field(description="The region PSN showed for the code, if given.")
    error_code: str | None = Field(description="This code's own PSN error code, if given.")
    decision: str | None = Field(
        default=None,
        description="The operator's decision on this code: `approved`, `rejected`, or null "
        "while undecided.",
    )
    decision_rule: str | None = Field(
        default=None, description="The not-covered rule a rejected code was refused under."
    )
    decision_rule_text: str | None = None
    decided_at: datetime | None = None
    remedy: RemedyOut | None = None


class SlaOut(BaseModel):
    triage_due_at: datetime
    remedy_due_at: datetime | None
    upstream_due_at: datetime | None
    due_at: datetime | None = Field(description="The current stage's deadline, if any.")
    overdue: bool


class EvidenceOut(BaseModel):
    id: str
    media_type: str
    size_bytes: int
    sha256: str
    uploaded_at: datetime


class ClaimOut(BaseModel):
    id: str
    order_id: str
    status: str = Field(description=f"One of {', '.join(tuple(ClaimStatus))}.")
    channel: str
    policy_version: str
    problem: str
    remedy: str
    codes: list[VerdictOut]
    error_code: str | None
    redemption: RedemptionIn
    evidence: list[EvidenceOut]
    sla: SlaOut
    info_request: str | None = Field(description="What the operator asked for (needs_info).")
    decision_rule: str | None
    replacement_order_ids: list[str]
    customer_message: str = Field(description="A sentence to show the end customer.")
    submitted_at: datetime
    updated_at: datetime


def verdict_out(
    position: int, claimed: ClaimCode, policy: rules.Policy, order_ids: dict[int, str]
) -> VerdictOut:
    remedy = None
    if claimed.remedy is not None:
        refunded = None
        if claimed.remedy.amount_minor is not None and claimed.remedy.currency is not None:
            refunded = MoneyOut.of(Money(claimed.remedy.amount_minor, claimed.remedy.currency))
        remedy = RemedyOut(
            kind=claimed.remedy.kind,
            state=claimed.remedy.state,
            refunded=refunded,
            replacement_order_id=order_ids.get(claimed.remedy.replacement_order_id or 0),
        )
    return VerdictOut(
        position=position,
        code=claimed.masked,
        problem=claimed.problem,
        classification=claimed.classification,
        verdict=claimed.verdict,
        rule=claimed.rule,
        rule_text=policy.rules[claimed.rule].text if claimed.rule else None,
        missing=list(claimed.missing),
        code_region=claimed.code_region,
        error_code=claimed.error_code,
        decision=claimed.decision,
        decision_rule=claimed.decision_rule,
        decision_rule_text=policy.rules[claimed.decision_rule].text
        if claimed.decision_rule
        else None,
        decided_at=claimed.decided_at,
        remedy=remedy,
    )


def claim_out(claim: Claim, order_ids: dict[int, str]) -> ClaimOut:
    """``order_ids``: public ids of the claim's order and its replacement orders (by id)."""
    policy = rules.POLICIES[claim.policy_version]
    replacements = {key: value for key, value in order_ids.items() if key != claim.order_id}
    return ClaimOut(
        id=claim.public_id,
        order_id=order_ids[claim.order_id],
        status=claim.status,
        channel=claim.channel,
        policy_version=claim.policy_version,
        problem=claim.problem,
        remedy=claim.remedy,
        codes=[
            verdict_out(position, c, policy, replacements)
            for position, c in enumerate(claim.codes, start=1)
        ],
        error_code=claim.error_code,
        redemption=RedemptionIn(
            account_region=claim.account_region,
            attempted_at=claim.attempted_at,
            exposed_publicly=claim.exposed_publicly,
        ),
        evidence=[
            EvidenceOut(
                id=e.public_id,
                media_type=e.media_type,
                size_bytes=e.size_bytes,
                sha256=e.sha256,
                uploaded_at=e.uploaded_at,
            )
            for e in claim.evidence
        ],
        sla=SlaOut(
            triage_due_at=claim.triage_due_at,
            remedy_due_at=claim.remedy_due_at,
            upstream_due_at=claim.upstream_due_at,
            due_at=claim.due_at,
            overdue=service.is_overdue(claim),
        ),
        info_request=claim.info_request,
        decision_rule=claim.decision_rule,
        replacement_order_ids=sorted(replacements.values()),
        customer_message=service.customer_message(claim),
        submitted_at=claim.submitted_at,
        updated_at=claim.updated_at,
    )


class ClaimPage(Page):
    data: list[ClaimOut]


class PreviewCode(BaseModel):
    code: str
    problem: str
    classification: str
    verdict: str
    rule: str | None
    rule_text: str | None
    missing: list[str]


class ClaimPreview(BaseModel):
    """What filing would conclude, without filing (``?dry_run=true``)."""

    dry_run: Literal[True] = True
    order_id: str
    policy_version: str
    codes: list[PreviewCode]
    would_be_filed: bool = Field(
        default=True, description="False when filing would be refused (see `refusal`)."
    )
    refusal: str | None = Field(
        default=None,
        description="The problem type filing would get: claim-window-closed, "
        "claim-already-open or code-already-remedied.",
    )
    refusal_detail: str | None = None


class HistoryOut(BaseModel):
    position: int = Field(description="The code's place in the claim, as in `codes`.")
    code: str
    sku: str
    batch: str
    supplier: str | None
    imported_at: datetime
    delivered_at: datetime | None
    state: str
    retrievals: int = Field(description="How often the order's codes were fetched.")
    first_fetched_at: datetime | None = Field(description="When the order's codes first were.")
    reveals: int = Field(description="How often this code was shown to the partner.")
    first_revealed_at: datetime | None = Field(
        description="When the partner first saw this code (API fetch or portal); null: never."
    )
    first_revealed_by: str | None = Field(
        description="Who did: `partner:…` (an API key) or `member:…` (a portal member)."
    )
    other_claims_on_batch: list[str]
    batch_claimed_codes: int = Field(
        description="Codes of the batch named in any claim (this one included)."
    )
    batch_defective: int = Field(description="Codes of the batch approved as defective.")
    other_claims_on_code: list[str] = Field(
        description="Earlier claims on this very code (rejected or cancelled): a changed story?"
    )


def history_out(h: service.CodeHistory) -> HistoryOut:
    first = h.first_revealed
    return HistoryOut(
        position=h.position,
        code=h.masked,
        sku=h.sku,
        batch=h.batch.reference,
        supplier=h.batch.supplier,
        imported_at=h.batch.imported_at,
        delivered_at=h.delivered_at,
        state=h.state,
        retrievals=h.order_reveals,
        first_fetched_at=h.order_first_revealed_at,
        reveals=len(h.reveals),
        first_revealed_at=first.at if first else None,
        first_revealed_by=first.actor if first else None,
        other_claims_on_batch=list(h.batch.other_claims),
        batch_claimed_codes=h.batch.claimed_codes,
        batch_defective=h.batch.defective,
        other_claims_on_code=[other.claim_id for other in h.other_claims],
    )


class QueuedClaimOut(ClaimOut):
    """A claim as the operator's queue lists it."""

    partner_id: str
    priority: int = Field(
        description="1: filed through the API (triaged first); 2: by the operator."
    )


class AdminClaimOut(QueuedClaimOut):
    """A claim as the operator sees it: with the partner's words and each code's history."""

    description: str | None
    decision_reason: str | None
    history: list[HistoryOut]


class AdminClaimPage(BaseModel):
    data: list[QueuedClaimOut]


class FiledOn(BaseModel):
    day: date
    claims: int


class QueueOverviewOut(BaseModel):
    """The claims queue at a glance."""

    overdue: int = Field(description="Open claims past their deadline.")
    due_soon: int = Field(description="Open claims due within 4 hours, not yet overdue.")
    waiting_on_partner: int = Field(description="Claims waiting for the partner (needs_info).")
    open: int
    filed_per_day: list[FiledOn] = Field(description="The last 30 days (UTC), oldest first.")


def overview_out(counts: service.QueueOverview) -> QueueOverviewOut:
    return QueueOverviewOut(
        overdue=counts.overdue,
        due_soon=counts.due_soon,
        waiting_on_partner=counts.waiting_on_partner,
        open=counts.open,
        filed_per_day=[FiledOn(day=day, claims=n) for day, n in counts.filed_per_day],
    )


def claim_view(session: Session, claim: Claim) -> ClaimOut:
    """The claim as its partner sees it (API and events)."""
    return claim_out(claim, service.order_public_ids(session, claim))


def queued_view(session: Session, claim: Claim) -> QueuedClaimOut:
    """The claim as the operator's queue lists it (operator API and ``codeshelf claims list``)."""
    return QueuedClaimOut(
        **claim_view(session, claim).model_dump(),
        partner_id=session.get_one(Partner, claim.partner_id).public_id,
        priority=claim.priority,
    )


def operator_view(session: Session, claim: Claim) -> AdminClaimOut:
    """The whole claim for the operator's decision (operator API and ``codeshelf claims``)."""
    history = [history_out(h) for h in service.history(session, claim)]
    return AdminClaimOut(
        **queued_view(session, claim).model_dump(),
        description=claim.description,
        decision_reason=claim.decision_reason,
        history=history,
    )


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=2000)
    rule: str | None = Field(default=None, max_length=64, description="For reject.")
    override: bool = Field(
        default=False,
        description="For approve: approve although some code is not eligible under the policy.",
    )


CodeRef = Annotated[
    Annotated[int, Field(strict=True, ge=1, le=service.MAX_CODES)]
    | Annotated[str, Field(min_length=1, max_length=32, pattern=PRINTABLE)],
    Field(
        description="A code of the claim: its `position` (1, 2, …), or its masked `code` as "
        "shown (`****-****-AB12`, or just `AB12`).",
        examples=[1, "****-****-AB12"],
    ),
]


class CodeDecisions(BaseModel):
    """The operator's decision on some or all of a claim's undecided codes."""

    model_config = ConfigDict(extra="forbid")

    approve: list[CodeRef] = Field(default_factory=list, max_length=service.MAX_CODES)
    reject: list[CodeRef] = Field(default_factory=list, max_length=service.MAX_CODES)
    reason: str | None = Field(default=None, max_length=2000, description="Required.")
    rule: str | None = Field(
        default=None,
        max_length=64,
        description="The not-covered rule the rejected codes fall under (default: each code's "
        "own verdict rule).",
    )
    override: bool = Field(
        default=False,
        description="Approve codes although the policy did not find them eligible.",
    )


def claim_preview(
    session: Session, vault: Vault, partner_id: int, data: service.ClaimInput
) -> ClaimPreview:
    """A claim judged under the policy without being filed (the API's ``dry_run``, the
    portal's check before filing): per code, its verdict, the rule and what evidence is
    missing; and whether it would be filed."""
    evaluation = service.evaluate(session, vault, partner_id, data, utcnow())
    preview = ClaimPreview(
        order_id=evaluation.order.public_id,
        policy_version=evaluation.policy.version,
        codes=[
            PreviewCode(
                code=mask(judged.code.last4),
                problem=judged.facts.problem,
                classification=judged.verdict.classification,
                verdict=judged.verdict.verdict,
                rule=judged.verdict.rule,
                rule_text=evaluation.policy.rules[judged.verdict.rule].text
                if judged.verdict.rule
                else None,
                missing=list(judged.verdict.missing),
            )
            for judged in evaluation.codes
        ],
    )
    refusal = service.filing_refusal(session, evaluation)
    if refusal is not None:
        preview.would_be_filed = False
        preview.refusal = refusal.slug
        preview.refusal_detail = refusal.detail
    return preview
