"""Access requests (seed 003: API access is reviewed manually): filing one from the public
form, the applicant's status link, and the operator's queue and decisions.

The rules:

- every field as ``fields.check`` says; one open application (submitted or under review) per
  e-mail address, even for two sent at the same moment (a partial unique index);
- the status link's token is 256 random bits, stored only as its SHA-256 hash: the link is
  shown once, when the application is filed;
- submitted -> under review -> approved or declined (approve and decline straight from
  submitted too); each decision once, the row locked while it is made, audited with its actor;
- approving opens the partner and invites its owner (``onboarding.open_partner``); declining
  needs a message, which the applicant reads on the status page.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from codeshelf.applications import fields
from codeshelf.applications.fields import ApplicationForm, CheckedApplication
from codeshelf.applications.models import (
    APPLICATION_PREFIX,
    OPEN_STATUSES,
    Application,
    ApplicationStatus,
)
from codeshelf.audit import service as audit
from codeshelf.kit.errors import ConflictError, InvalidInputError, NotFoundError
from codeshelf.kit.ids import is_public_id, public_id
from codeshelf.kit.money import Money
from codeshelf.kit.tokens import hash_key, same_hash
from codeshelf.members.service import onboarding
from codeshelf.partners import service as partners

STATUS_PATH = "/apply/status/"
TOKEN_BYTES = 32  # 256 bits
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)
QUEUE_LIMIT = 200

Status = ApplicationStatus
TRANSITIONS: dict[str, frozenset[str]] = {
    Status.SUBMITTED: frozenset({Status.UNDER_REVIEW, Status.APPROVED, Status.DECLINED}),
    Status.UNDER_REVIEW: frozenset({Status.APPROVED, Status.DECLINED}),
    Status.APPROVED: frozenset(),
    Status.DECLINED: frozenset(),
}
# What the applicant's status page says each status is.
STATUS_WORDS: dict[str, str] = {
    Status.SUBMITTED: "Received, waiting for review",
    Status.UNDER_REVIEW: "Under review",
    Status.APPROVED: "Approved",
    Status.DECLINED: "Declined",
}


class ApplicationNotFoundError(NotFoundError):
    slug = "application-not-found"


class ApplicationOpenError(ConflictError):
    slug = "application-already-open"


class ApplicationStateError(ConflictError):
    slug = "application-state-conflict"


@dataclass(frozen=True)
class Filed:
    application: Application
    token: str  # the status link's; never stored, shown once

    @property
    def path(self) -> str:
        return STATUS_PATH + self.token


@dataclass(frozen=True)
class ApplicantView:
    """What the status link shows: the applicant's own company and where the review stands."""

    company: str
    submitted_at: datetime
    status: str
    status_text: str
    message: str | None  # the operator's


@dataclass(frozen=True)
class Approved:
    application: Application
    opened: onboarding.Opened  # the partner, and its owner's invitation (link shown once)


def check(form: ApplicationForm) -> CheckedApplication:
    """The form's fields, checked (``fields.InvalidApplicationError`` names each problem)."""
    return fields.check(form)


def file_application(session: Session, form: ApplicationForm, now: datetime) -> Filed:
    """A new application, submitted, and the token of its status link."""
    checked = check(form)
    if _open_for(session, checked.email) is not None:
        raise _already_open()
    token = secrets.token_urlsafe(TOKEN_BYTES)
    application = _new(checked, hash_key(token), now)
    try:
        with session.begin_nested():
            session.add(application)
    except IntegrityError:  # the same address filed at this very moment: that one counts
        raise _already_open() from None
    audit.record(
        session,
        actor=f"applicant:{application.public_id}",
        action="application.file",
        subject=application.public_id,
        details={"company": checked.company, "country": checked.country},
    )
    return Filed(application, token)


def _new(checked: CheckedApplication, token_hash: str, now: datetime) -> Application:
    return Application(
        public_id=public_id(APPLICATION_PREFIX),
        token_hash=token_hash,
        status=Status.SUBMITTED,
        company=checked.company,
        website=checked.website,
        country=checked.country,
        contact_name=checked.contact_name,
        email=checked.email,
        buyer_type=checked.buyer_type,
        monthly_volume_minor=checked.monthly_volume.minor,
        volume_currency=checked.monthly_volume.currency,
        regions=",".join(checked.regions),
        payment_preference=checked.payment_preference,
        integration=checked.integration,
        use_case=checked.use_case,
        created_at=now,
        updated_at=now,
    )


def _open_for(session: Session, email: str) -> Application | None:
    found: Application | None = session.scalar(
        select(Application).where(Application.email == email, Application.status.in_(OPEN_STATUSES))
    )
    return found


def _already_open() -> ApplicationOpenError:
    return ApplicationOpenError(
        "an application from this e-mail address is already being reviewed: you can follow it "
        "with the status link you were given when you applied",
        pointer="#/email",
    )


def status_of(session: Session, token: str) -> ApplicantView:
    """What the status link ``/apply/status/<token>`` shows; an unknown token is not found."""
    unknown = ApplicationNotFoundError("this status link is unknown: check that it is complete")
    if not _TOKEN.fullmatch(token):
        raise unknown
    digest = hash_key(token)
    found = session.scalar(select(Application).where(Application.token_hash == digest))
    if found is None or not same_hash(found.token_hash, digest):
        raise unknown
    return ApplicantView(
        company=found.company,
        submitted_at=found.created_at,
        status=found.status,
        status_text=STATUS_WORDS[found.status],
        message=found.message,
    )


def get(session: Session, application_public_id: str) -> Application:
    if not is_public_id(APPLICATION_PREFIX, application_public_id):
        raise ApplicationNotFoundError(f"no application {application_public_id[:40]!r}")
    found = session.scalar(
        select(Application).where(Application.public_id == application_public_id)
    )
    if found is None:
        raise ApplicationNotFoundError(f"no application {application_public_id}")
    return found


def queue(
    session: Session, status: str | None = None, limit: int = QUEUE_LIMIT
) -> list[Application]:
    """The operator's queue, oldest first: the open applications (submitted, under review),
    or those with ``status``."""
    query = select(Application)
    if status is None:
        query = query.where(Application.status.in_(OPEN_STATUSES))
    elif status in tuple(Status):
        query = query.where(Application.status == status)
    else:
        raise InvalidInputError(
            f"status must be one of {', '.join(Status)}", pointer="query:status"
        )
    return list(
        session.scalars(query.order_by(Application.created_at, Application.id).limit(limit))
    )


def volume(application: Application) -> Money:
    return Money(application.monthly_volume_minor, application.volume_currency)


def regions(application: Application) -> list[str]:
    return application.regions.split(",")


def partner_public_id(session: Session, application: Application) -> str | None:
    """The partner an approved application opened (``ptr_…``)."""
    if application.partner_id is None:
        return None
    return partners.public_id_of(session, application.partner_id)


def _locked(session: Session, application_public_id: str) -> Application:
    """The application, its row locked until commit (PostgreSQL; SQLite writes one at a time)."""
    application = get(session, application_public_id)
    session.refresh(application, with_for_update=True)
    return application


def _move(application: Application, status: str, actor: str, now: datetime) -> None:
    if status not in TRANSITIONS[application.status]:
        raise ApplicationStateError(
            f"application {application.public_id} is {application.status}; "
            f"it cannot be {status} now"
        )
    application.status = status
    application.reviewed_by = actor
    application.reviewed_at = now
    application.updated_at = now


def _message(message: str | None, *, required: bool) -> str | None:
    """The operator's message to the applicant (shown on the status page)."""
    if message is None or not message.strip():
        if required:
            raise InvalidInputError("write the applicant a message", pointer="#/message")
        return None
    try:
        return fields.text(message, "the message", fields.MESSAGE_MAX)
    except InvalidInputError as exc:
        raise InvalidInputError(exc.detail, pointer="#/message") from None


def _audit(session: Session, application: Application, actor: str, action: str) -> None:
    audit.record(
        session,
        actor=actor,
        action=action,
        partner_public_id=partner_public_id(session, application),
        subject=application.public_id,
        details={"status": application.status, "message": application.message},
    )


def review(session: Session, application_public_id: str, actor: str, now: datetime) -> Application:
    """Mark a submitted application under review (the applicant's page says so)."""
    application = _locked(session, application_public_id)
    _move(application, Status.UNDER_REVIEW, actor, now)
    _audit(session, application, actor, "application.review")
    return application


def approve(
    session: Session,
    application_public_id: str,
    actor: str,
    now: datetime,
    message: str | None = None,
) -> Approved:
    """Approve: the partner is opened under the company's name and its owner invited at the
    applicant's address (``Approved.opened.invitation``: the link, for the door to show or
    send). Refused, with nothing written, when that address already has an account."""
    application = _locked(session, application_public_id)
    said = _message(message, required=False)
    _move(application, Status.APPROVED, actor, now)
    opened = onboarding.open_partner(session, application.company, application.email, actor, now)
    application.partner_id = opened.partner.id
    application.message = said
    _audit(session, application, actor, "application.approve")
    return Approved(application, opened)


def decline(
    session: Session, application_public_id: str, actor: str, now: datetime, message: str
) -> Application:
    """Decline, with a message the applicant reads on the status page."""
    application = _locked(session, application_public_id)
    application.message = _message(message, required=True)
    _move(application, Status.DECLINED, actor, now)
    _audit(session, application, actor, "application.decline")
    return application
