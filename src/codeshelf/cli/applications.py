"""``codeshelf application …``: access requests from the public form, and the decisions on them.

``--json`` prints an application exactly as ``GET /api/v1/admin/applications/{id}`` shows it
(``approve`` adds the owner's ``invitation``, its link shown once). With ``codeshelf --as
EMAIL`` the staff member must be allowed: access requests (list, show, review) or managing
partners (approve, decline).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer
from sqlalchemy.orm import Session

from codeshelf.applications import service
from codeshelf.applications.models import Application
from codeshelf.applications.schemas import ApplicationOut, approved_view
from codeshelf.cli import context
from codeshelf.cli.options import JsonOption
from codeshelf.cli.output import domain_errors, emit, fail, money_text, say, table
from codeshelf.kit.clock import utcnow
from codeshelf.members.roles import StaffPermission, staff_can

application_app = typer.Typer(
    no_args_is_help=True, help="Access requests from the public form (/apply)."
)
MessageOption = Annotated[str, typer.Option("--message", help="Shown to the applicant.")]


def _allowed(session: Session, permission: StaffPermission) -> str:
    """The actor, once the ``--as`` staff member (if any) may do ``permission``."""
    member = context.acting_member(session)
    if member is not None and not staff_can(member.role, permission):
        fail(f"--as: a staff {member.role} may not do this ({permission} is needed)")
    return context.actor(session)


def _view(session: Session, application: Application) -> dict[str, Any]:
    return ApplicationOut.of(session, application).model_dump(mode="json")


def _say_one(data: dict[str, Any]) -> None:
    say(f"{data['id']}  {data['status']}  {data['company']} ({data['country']})")
    say(f"  contact:  {data['contact_name']} <{data['email']}>")
    say(f"  website:  {data['website'] or '-'}")
    say(f"  buyer:    {data['buyer_type']}, orders by {data['integration']}")
    say(f"  pays by:  {data['payment_preference']}")
    say(f"  volume:   {money_text(data['monthly_volume'])} a month in {', '.join(data['regions'])}")
    say(f"  filed:    {data['created_at']}")
    say(f"  use case: {data['use_case']}")
    if data["reviewed_by"]:
        say(f"  decided:  {data['reviewed_at']} by {data['reviewed_by']}")
    if data["message"]:
        say(f"  message:  {data['message']}")
    if data["partner_id"]:
        say(f"  partner:  {data['partner_id']}")


@application_app.command("list")
def application_list(
    status: Annotated[
        str | None,
        typer.Option(help="submitted, under_review, approved or declined (default: open ones)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """The queue, oldest first: open applications (submitted, under review) or one status."""
    with domain_errors(), context.database().read_session() as session:
        _allowed(session, StaffPermission.PARTNERS)
        data = [_view(session, a) for a in service.queue(session, status)]
    rows = [
        (d["id"], d["status"], d["company"], d["email"], money_text(d["monthly_volume"]),
         ",".join(d["regions"]), d["integration"], d["created_at"][:10])
        for d in data
    ]  # fmt: skip
    columns = ["application", "status", "company", "email", "volume", "regions", "via", "filed"]
    emit(data, as_json, lambda: table("Access requests", columns, rows))


@application_app.command("show")
def application_show(application_id: str, as_json: JsonOption = False) -> None:
    """Everything the applicant sent, and the decision so far."""
    with domain_errors(), context.database().read_session() as session:
        _allowed(session, StaffPermission.PARTNERS)
        data = _view(session, service.get(session, application_id))
    emit(data, as_json, lambda: _say_one(data))


def _decide(
    permission: StaffPermission, as_json: bool, decide: Callable[[Session, str], Application]
) -> None:
    with domain_errors(), context.database().session() as session:
        data = _view(session, decide(session, _allowed(session, permission)))
    emit(data, as_json, lambda: say(f"{data['id']}: {data['status']}"))


@application_app.command("review")
def application_review(application_id: str, as_json: JsonOption = False) -> None:
    """Mark a submitted application under review (the applicant's status page says so)."""
    _decide(
        StaffPermission.PARTNERS,
        as_json,
        lambda session, actor: service.review(session, application_id, actor, utcnow()),
    )


@application_app.command("approve")
def application_approve(
    application_id: str,
    message: Annotated[
        str | None, typer.Option("--message", help="Shown to the applicant.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Approve: opens the partner and prints its owner's one-time invitation link (72 h)."""
    settings = context.settings()
    with domain_errors(), context.database().session() as session:
        actor = _allowed(session, StaffPermission.MANAGE_PARTNERS)
        approved = service.approve(session, application_id, actor, utcnow(), message)
        data = approved_view(session, approved, settings.public_url).model_dump(mode="json")

    def render() -> None:
        say(f"{data['id']}: approved; partner {data['partner_id']} ({data['company']})")
        invitation = data["invitation"]
        say(f"owner's invitation for {invitation['email']} (send it to them): {invitation['link']}")

    emit(data, as_json, render)


@application_app.command("decline")
def application_decline(
    application_id: str, message: MessageOption, as_json: JsonOption = False
) -> None:
    """Decline, with a message the applicant reads on their status page."""
    _decide(
        StaffPermission.MANAGE_PARTNERS,
        as_json,
        lambda session, actor: service.decline(session, application_id, actor, utcnow(), message),
    )
