"""The operator's claims API under /api/v1/admin/claims, for operator keys only."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any, Literal

from cryptography.exceptions import InvalidTag
from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from codeshelf.api.deps import OperatorDep, ServicesDep
from codeshelf.api.problems import HTTPProblemError
from codeshelf.claims import service
from codeshelf.claims.evidence import EvidenceCorruptedError
from codeshelf.claims.models import Claim, ClaimEvidence
from codeshelf.claims.schemas import (
    AdminClaimOut,
    AdminClaimPage,
    CodeDecisions,
    Decision,
    QueueOverviewOut,
    operator_view,
    overview_out,
    queued_view,
)
from codeshelf.operators.models import OperatorKey
from codeshelf.operators.service import actor_name

# Left out of the partners' OpenAPI document (see app.py): operators get theirs from
# /api/v1/admin/openapi.json.
router = APIRouter(prefix="/admin", tags=["admin: claims"])


def _actor(key: OperatorKey) -> service.Actor:
    return service.Actor(actor_name(key), key_public_id=key.public_id)


@router.get("/claims", response_model=AdminClaimPage)
def triage_queue(
    operator: OperatorDep,
    services: ServicesDep,
    status: Literal[
        "submitted",
        "triaged",
        "needs_info",
        "approved",
        "escalated_upstream",
        "rejected",
        "resolved",
        "cancelled",
    ]
    | None = None,
    overdue: bool = False,
    due_within_hours: Annotated[
        int | None,
        Query(
            ge=1,
            le=24 * 90,
            description="Only claims due within this many hours (overdue ones included).",
        ),
    ] = None,
    partner: Annotated[
        str | None, Query(max_length=64, description="Only this partner's claims (its id).")
    ] = None,
    channel: Literal["api", "operator"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
) -> AdminClaimPage:
    """Open claims, most urgent first (deadline, then API claims before others)."""
    with services.db.read_session() as session:
        claims = service.queue(
            session,
            status=status,
            overdue=overdue,
            due_within=timedelta(hours=due_within_hours) if due_within_hours else None,
            partner=partner,
            channel=channel,
            limit=limit,
        )
        return AdminClaimPage(data=[queued_view(session, claim) for claim in claims])


@router.get("/claims/overview", response_model=QueueOverviewOut)
def queue_overview(operator: OperatorDep, services: ServicesDep) -> QueueOverviewOut:
    """The queue at a glance: overdue, due within 4 hours, waiting on the partner, and claims
    filed per day over the last 30 days."""
    with services.db.read_session() as session:
        return overview_out(service.overview(session))


@router.get("/claims/{claim_id}", response_model=AdminClaimOut)
def show_claim(claim_id: str, operator: OperatorDep, services: ServicesDep) -> AdminClaimOut:
    """The claim with its evidence, verdicts, and each code's history."""
    with services.db.read_session() as session:
        return operator_view(session, service.get_claim(session, claim_id))


@router.get("/claims/{claim_id}/evidence/{evidence_id}")
def evidence_file(
    claim_id: str, evidence_id: str, operator: OperatorDep, services: ServicesDep
) -> Response:
    """The screenshot itself, decrypted and checked against its recorded SHA-256."""
    with services.db.read_session() as session:
        claim = service.get_claim(session, claim_id)
        record = session.scalar(
            select(ClaimEvidence).where(
                ClaimEvidence.claim_id == claim.id, ClaimEvidence.public_id == evidence_id
            )
        )
        if record is None:
            raise service.ClaimNotFoundError(f"claim {claim_id} has no evidence {evidence_id}")
    try:
        data = services.evidence.read(record.storage_key, record.key_id, record.sha256)
    except (OSError, EvidenceCorruptedError, InvalidTag) as exc:
        # Missing from this server's evidence directory, or no longer what was uploaded.
        raise HTTPProblemError(
            "evidence-unavailable",
            f"evidence {evidence_id} cannot be read back intact ({type(exc).__name__})",
        ) from None
    return Response(
        data,
        media_type=record.media_type,
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )


def _decide(services: Any, claim_id: str, decide: Callable[[Session], Claim]) -> AdminClaimOut:
    with services.db.session() as session:
        claim = decide(session)
        return operator_view(session, claim)


@router.post("/claims/{claim_id}/triage", response_model=AdminClaimOut)
def triage(claim_id: str, operator: OperatorDep, services: ServicesDep) -> AdminClaimOut:
    return _decide(services, claim_id, lambda s: service.triage(s, claim_id, _actor(operator)))


@router.post("/claims/{claim_id}/approve", response_model=AdminClaimOut)
def approve(
    claim_id: str, body: Decision, operator: OperatorDep, services: ServicesDep
) -> AdminClaimOut:
    """Approve every undecided code (reason required): the codes are voided and the partner's
    remedy carried out (or queued for stock). A code not eligible under the policy needs
    `override`."""
    return _decide(
        services,
        claim_id,
        lambda s: service.approve(
            s, claim_id, _actor(operator), body.reason or "", override=body.override
        ),
    )


@router.post("/claims/{claim_id}/decisions", response_model=AdminClaimOut)
def decide(
    claim_id: str, body: CodeDecisions, operator: OperatorDep, services: ServicesDep
) -> AdminClaimOut:
    """Decide codes one by one (reason required): approved codes are voided and given the
    partner's remedy (an eligible verdict, or `override`); rejected codes fall under `rule`
    (default: each code's own not-covered verdict rule) and go back to the partner. Codes may be
    decided in several steps; once every code is decided the claim is approved if any code
    was, else rejected."""
    return _decide(
        services,
        claim_id,
        lambda s: service.decide(
            s,
            claim_id,
            _actor(operator),
            body.reason or "",
            approve=body.approve,
            reject=body.reject,
            rule=body.rule,
            override=body.override,
        ),
    )


@router.post("/claims/{claim_id}/reject", response_model=AdminClaimOut)
def reject(
    claim_id: str, body: Decision, operator: OperatorDep, services: ServicesDep
) -> AdminClaimOut:
    """Reject every undecided code under a not-covered rule (default: each code's own verdict
    rule); reason required."""
    return _decide(
        services,
        claim_id,
        lambda s: service.reject(s, claim_id, _actor(operator), body.reason or "", body.rule),
    )


@router.post("/claims/{claim_id}/request-info", response_model=AdminClaimOut)
def request_info(
    claim_id: str, body: Decision, operator: OperatorDep, services: ServicesDep
) -> AdminClaimOut:
    """Ask the partner for more (the reason is shown to them)."""
    return _decide(
        services,
        claim_id,
        lambda s: service.request_info(s, claim_id, _actor(operator), body.reason or ""),
    )


@router.post("/claims/{claim_id}/escalate", response_model=AdminClaimOut)
def escalate(
    claim_id: str, body: Decision, operator: OperatorDep, services: ServicesDep
) -> AdminClaimOut:
    """Dispute with the upstream supplier: codes quarantined, 7-business-day clock."""
    holidays = services.settings.holiday_dates()
    return _decide(
        services,
        claim_id,
        lambda s: service.escalate(s, claim_id, _actor(operator), body.reason or "", holidays),
    )


@router.post("/claims/{claim_id}/resolve", response_model=AdminClaimOut)
def resolve(claim_id: str, operator: OperatorDep, services: ServicesDep) -> AdminClaimOut:
    """Carry out what an approved claim still waits for (replacements, once stock is in)."""
    return _decide(services, claim_id, lambda s: service.resolve(s, claim_id, _actor(operator)))


@router.get("/openapi.json", include_in_schema=False)
def operator_openapi(operator: OperatorDep, request: Request) -> dict[str, Any]:
    """The operator API's own OpenAPI document (operator keys only)."""
    schema: dict[str, Any] = request.app.state.operator_openapi()
    return schema
