"""The operator's access-request API under /api/v1/admin/applications, for operator keys only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from sqlalchemy.orm import Session

from codeshelf.api.deps import OperatorDep, ServicesDep
from codeshelf.applications import service
from codeshelf.applications.models import Application
from codeshelf.applications.schemas import (
    ApplicationOut,
    ApplicationPage,
    Approval,
    ApprovedOut,
    Declining,
    approved_view,
)
from codeshelf.kit.clock import utcnow
from codeshelf.operators.service import actor_name

router = APIRouter(prefix="/admin", tags=["admin: applications"])


@router.get("/applications", response_model=ApplicationPage)
def application_queue(
    operator: OperatorDep,
    services: ServicesDep,
    status: Literal["submitted", "under_review", "approved", "declined"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = service.QUEUE_LIMIT,
) -> ApplicationPage:
    """Access requests, oldest first: the open ones (submitted, under review) unless `status`
    names another."""
    with services.db.read_session() as session:
        found = service.queue(session, status, limit)
        return ApplicationPage(data=[ApplicationOut.of(session, a) for a in found])


@router.get("/applications/{application_id}", response_model=ApplicationOut)
def show_application(
    application_id: str, operator: OperatorDep, services: ServicesDep
) -> ApplicationOut:
    """One application, with everything the applicant sent."""
    with services.db.read_session() as session:
        return ApplicationOut.of(session, service.get(session, application_id))


def _decide(services: Any, decide: Callable[[Session], Application]) -> ApplicationOut:
    with services.db.session() as session:
        return ApplicationOut.of(session, decide(session))


@router.post("/applications/{application_id}/review", response_model=ApplicationOut)
def review(application_id: str, operator: OperatorDep, services: ServicesDep) -> ApplicationOut:
    """Mark a submitted application under review (the applicant's status page says so)."""
    actor = actor_name(operator)
    return _decide(services, lambda s: service.review(s, application_id, actor, utcnow()))


@router.post("/applications/{application_id}/approve", response_model=ApprovedOut)
def approve(
    application_id: str, body: Approval, operator: OperatorDep, services: ServicesDep
) -> ApprovedOut:
    """Approve: the partner is opened under the company's name, and its owner invited at the
    applicant's address. The answer holds the invitation link (shown once): send it to them."""
    with services.db.session() as session:
        approved = service.approve(
            session, application_id, actor_name(operator), utcnow(), body.message
        )
        return approved_view(session, approved, services.settings.public_url)


@router.post("/applications/{application_id}/decline", response_model=ApplicationOut)
def decline(
    application_id: str, body: Declining, operator: OperatorDep, services: ServicesDep
) -> ApplicationOut:
    """Decline, with a message the applicant reads on their status page."""
    actor = actor_name(operator)
    return _decide(
        services, lambda s: service.decline(s, application_id, actor, utcnow(), body.message)
    )
