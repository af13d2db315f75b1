"""An access application as the operator sees it: the admin API's documents, which the CLI's
``--json`` prints too."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from codeshelf.applications import service
from codeshelf.applications.fields import MESSAGE_MAX
from codeshelf.applications.models import Application
from codeshelf.kit.schemas import MoneyOut
from codeshelf.members.service.invitations import IssuedInvitation


class ApplicationOut(BaseModel):
    id: str = Field(examples=["apl_3f9a0c1d2e4b5a6c7d8e"])
    status: str = Field(description="submitted, under_review, approved or declined.")
    company: str
    website: str | None
    country: str = Field(description="ISO 3166-1 alpha-2.", examples=["DE"])
    contact_name: str
    email: str
    buyer_type: str
    monthly_volume: MoneyOut = Field(description="The volume the applicant expects a month.")
    regions: list[str] = Field(examples=[["US", "DE"]])
    payment_preference: str
    integration: str = Field(description="api (orders through the API) or manual (portal).")
    use_case: str
    message: str | None = Field(description="The operator's message, shown to the applicant.")
    reviewed_by: str | None = Field(description="Who made the last decision (audit actor).")
    reviewed_at: datetime | None
    partner_id: str | None = Field(description="The partner opened on approval.")
    created_at: datetime

    @classmethod
    def of(cls, session: Session, application: Application) -> ApplicationOut:
        return cls(
            id=application.public_id,
            status=application.status,
            company=application.company,
            website=application.website,
            country=application.country,
            contact_name=application.contact_name,
            email=application.email,
            buyer_type=application.buyer_type,
            monthly_volume=MoneyOut.of(service.volume(application)),
            regions=service.regions(application),
            payment_preference=application.payment_preference,
            integration=application.integration,
            use_case=application.use_case,
            message=application.message,
            reviewed_by=application.reviewed_by,
            reviewed_at=application.reviewed_at,
            partner_id=service.partner_public_id(session, application),
            created_at=application.created_at,
        )


class ApplicationPage(BaseModel):
    data: list[ApplicationOut]


class OwnerInvitationOut(BaseModel):
    email: str
    role: str
    expires_at: datetime
    link: str = Field(description="The owner's one-time link (valid 72 hours); shown once.")

    @classmethod
    def of(cls, issued: IssuedInvitation, public_url: str) -> OwnerInvitationOut:
        return cls(
            email=issued.invitation.email,
            role=issued.invitation.role,
            expires_at=issued.invitation.expires_at,
            link=public_url.rstrip("/") + issued.path,
        )


class ApprovedOut(ApplicationOut):
    invitation: OwnerInvitationOut = Field(description="Send its link to the new owner.")


class Approval(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str | None = Field(
        default=None, max_length=MESSAGE_MAX, description="Shown to the applicant."
    )


class Declining(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str = Field(
        min_length=1, max_length=MESSAGE_MAX, description="Why: shown to the applicant."
    )


def approved_view(session: Session, approved: service.Approved, public_url: str) -> ApprovedOut:
    return ApprovedOut(
        **ApplicationOut.of(session, approved.application).model_dump(),
        invitation=OwnerInvitationOut.of(approved.opened.invitation, public_url),
    )
