"""``codeshelf claims …``: the triage queue and the operator's decisions.

``--json`` prints a claim exactly as the operator API shows it: the queue's entries as
``GET /api/v1/admin/claims`` lists them, one claim as ``GET /api/v1/admin/claims/{id}``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy.orm import Session

from codeshelf.claims import evidence, service
from codeshelf.claims.models import Channel, Claim, RemedyKind
from codeshelf.claims.schemas import operator_view, queued_view
from codeshelf.cli import context
from codeshelf.cli.options import JsonOption, OperatorOption, operator_name
from codeshelf.cli.output import domain_errors, emit, fail, say, table
from codeshelf.members.roles import StaffPermission, staff_can
from codeshelf.members.service import staff
from codeshelf.partners import service as partners

claims_app = typer.Typer(no_args_is_help=True, help="Code-support claims: the triage queue.")
ReasonOption = Annotated[str, typer.Option(help="Why (kept in the audit log).")]


def operator_actor(session: Session, name: str | None) -> service.Actor:
    """Who decides: the staff member ``codeshelf --as EMAIL`` names (one allowed to handle
    claims), else the operator ``--operator`` (or the login name) names."""
    member = context.acting_member(session)
    if member is None:
        return service.Actor(operator_name(name))
    if not staff_can(member.role, StaffPermission.CLAIMS):
        fail(f"--as: {member.email} is {member.role} staff and may not handle claims")
    return service.Actor(staff.actor(member))


def _view(session: Session, claim: Claim) -> dict[str, Any]:
    return operator_view(session, claim).model_dump(mode="json")


def _verdicts(data: dict[str, Any]) -> str:
    return ", ".join(f"{c['code'][-4:]}:{c['verdict']}" for c in data["codes"])


@claims_app.command("list")
def claims_list(
    status: Annotated[str | None, typer.Option(help="Only this status (default: open).")] = None,
    overdue: Annotated[bool, typer.Option("--overdue", help="Only past their deadline.")] = False,
    due_within: Annotated[
        int | None,
        typer.Option(min=1, metavar="HOURS", help="Only due within HOURS (overdue included)."),
    ] = None,
    partner: Annotated[str | None, typer.Option(help="Only this partner's claims.")] = None,
    channel: Annotated[
        str | None, typer.Option(help="Only claims filed by api or operator.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """The triage queue: open claims, most urgent first (deadline, then API claims)."""
    with domain_errors(), context.database().read_session() as session:
        found = service.queue(
            session,
            status=status,
            overdue=overdue,
            due_within=timedelta(hours=due_within) if due_within else None,
            partner=partner,
            channel=channel,
        )
        data = [queued_view(session, claim).model_dump(mode="json") for claim in found]
    rows = [
        (
            d["id"],
            d["partner_id"],
            d["status"],
            d["channel"],
            _verdicts(d),
            d["sla"]["due_at"] or "",
            "OVERDUE" if d["sla"]["overdue"] else "",
        )
        for d in data
    ]
    columns = ["claim", "partner", "status", "channel", "verdicts", "due", ""]
    emit(data, as_json, lambda: table("claims", columns, rows))


@claims_app.command("show")
def claims_show(claim_id: str, as_json: JsonOption = False) -> None:
    """A claim: evidence, verdicts with their rules, each code's history."""
    with domain_errors(), context.database().read_session() as session:
        data = _view(session, service.get_claim(session, claim_id))
    emit(data, as_json, lambda: _render(data))


def _render(data: dict[str, Any]) -> None:
    redemption, sla = data["redemption"], data["sla"]
    say(f"{data['id']}  {data['status']}  ({data['channel']}, policy {data['policy_version']})")
    say(f"partner {data['partner_id']}  order {data['order_id']}  remedy {data['remedy']}")
    say(
        f"problem {data['problem']}; account region {redemption['account_region']}; "
        f"attempted {redemption['attempted_at']}; error {data['error_code']}"
    )
    if data["description"]:
        say(f"description: {data['description']}")
    say(f"due {sla['due_at']}{'  OVERDUE' if sla['overdue'] else ''}")
    for code in data["codes"]:
        missing = f" missing {', '.join(code['missing'])}" if code["missing"] else ""
        decision = code["decision"] or "undecided"
        if code["decision_rule"]:
            decision += f" under {code['decision_rule']}"
        remedy = f" remedy {code['remedy']}" if code["remedy"] else ""
        say(
            f"  {code['position']}. {code['code']}: {code['verdict']} ({code['rule'] or '-'})"
            f"{missing}; {decision}{remedy}"
        )
    for item in data["evidence"]:
        say(
            f"  evidence {item['id']}: {item['media_type']} {item['size_bytes']} B "
            f"sha256 {item['sha256']}"
        )
    for h in data["history"]:
        say(
            f"  {h['code']}: batch {h['batch']} from {h['supplier']}, delivered "
            f"{h['delivered_at']}, fetched {h['retrievals']}x, state {h['state']}, "
            f"other claims on batch: {', '.join(h['other_claims_on_batch']) or 'none'}"
        )
    say(f"customer message: {data['customer_message']}")


def _decide(claim_id: str, as_json: bool, verb: str, decide: Callable[[Session], Claim]) -> None:
    with domain_errors(), context.database().session() as session:
        data = _view(session, decide(session))
    emit(data, as_json, lambda: say(f"{verb} {claim_id}: now {data['status']}"))


@claims_app.command("triage")
def claims_triage(
    claim_id: str, operator: OperatorOption = None, as_json: JsonOption = False
) -> None:
    """Mark a submitted claim as triaged (deciding on it does this too)."""
    _decide(
        claim_id,
        as_json,
        "triaged",
        lambda s: service.triage(s, claim_id, operator_actor(s, operator)),
    )


@claims_app.command("approve")
def claims_approve(
    claim_id: str,
    reason: ReasonOption = ...,  # type: ignore[assignment]
    override: Annotated[
        bool, typer.Option("--override", help="Approve although a code is not eligible.")
    ] = False,
    operator: OperatorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Approve: void the codes, refund or replace each (replacements wait for stock)."""
    _decide(
        claim_id,
        as_json,
        "approved",
        lambda s: service.approve(
            s, claim_id, operator_actor(s, operator), reason, override=override
        ),
    )


@claims_app.command("reject")
def claims_reject(
    claim_id: str,
    reason: ReasonOption = ...,  # type: ignore[assignment]
    rule: Annotated[
        str | None, typer.Option(help="The not-covered rule (default: the verdict's).")
    ] = None,
    operator: OperatorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Reject under a not-covered rule of the claim's policy."""
    _decide(
        claim_id,
        as_json,
        "rejected",
        lambda s: service.reject(s, claim_id, operator_actor(s, operator), reason, rule),
    )


CodeOption = Annotated[
    list[str] | None,
    typer.Option(
        help="A code of the claim: its position (1, 2, …) or its masked code (AB12); repeat."
    ),
]


@claims_app.command("decide")
def claims_decide(
    claim_id: str,
    approve: CodeOption = None,
    reject: CodeOption = None,
    reason: ReasonOption = ...,  # type: ignore[assignment]
    rule: Annotated[
        str | None,
        typer.Option(help="The not-covered rule of the rejected codes (default: each one's own)."),
    ] = None,
    override: Annotated[
        bool, typer.Option("--override", help="Approve codes although not eligible.")
    ] = False,
    operator: OperatorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Decide codes one by one: approved ones are voided and refunded or replaced, rejected ones
    go back to the partner. Undecided codes keep the claim open; once all are decided it is
    approved if any code was, else rejected."""
    _decide(
        claim_id,
        as_json,
        "decided",
        lambda s: service.decide(
            s,
            claim_id,
            operator_actor(s, operator),
            reason,
            approve=approve or [],
            reject=reject or [],
            rule=rule,
            override=override,
        ),
    )


@claims_app.command("request-info")
def claims_request_info(
    claim_id: str,
    reason: Annotated[str, typer.Option(help="What you need (shown to the partner).")] = ...,  # type: ignore[assignment]
    operator: OperatorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Ask the partner for more evidence; the clock waits for their answer."""
    _decide(
        claim_id,
        as_json,
        "asked about",
        lambda s: service.request_info(s, claim_id, operator_actor(s, operator), reason),
    )


@claims_app.command("escalate")
def claims_escalate(
    claim_id: str,
    reason: Annotated[str, typer.Option(help="What the supplier is asked.")] = ...,  # type: ignore[assignment]
    operator: OperatorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Dispute upstream: codes quarantined, 7 business days (CODESHELF_HOLIDAYS skipped)."""
    holidays = context.settings().holiday_dates()
    _decide(
        claim_id,
        as_json,
        "escalated",
        lambda s: service.escalate(s, claim_id, operator_actor(s, operator), reason, holidays),
    )


@claims_app.command("resolve")
def claims_resolve(
    claim_id: str, operator: OperatorOption = None, as_json: JsonOption = False
) -> None:
    """Carry out an approved claim's waiting replacements (once stock is in) and close it."""
    _decide(
        claim_id,
        as_json,
        "resolved",
        lambda s: service.resolve(s, claim_id, operator_actor(s, operator)),
    )


@claims_app.command("file")
def claims_file(
    partner_id: Annotated[str, typer.Option("--partner")] = ...,  # type: ignore[assignment]
    order_id: Annotated[str, typer.Option("--order")] = ...,  # type: ignore[assignment]
    codes: Annotated[list[str], typer.Option("--code", help="Repeat for several codes.")] = ...,  # type: ignore[assignment]
    problem: Annotated[str, typer.Option(help="invalid, already_redeemed, wrong_region, …")] = ...,  # type: ignore[assignment]
    remedy: str = RemedyKind.REPLACEMENT,
    account_region: str | None = None,
    attempted_at: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%dT%H:%M:%S%z"], help="e.g. 2026-11-20T10:00:00+00:00"),
    ] = None,
    error_code: str | None = None,
    code_region: str | None = None,
    screenshot: Annotated[list[Path] | None, typer.Option(exists=True, dir_okay=False)] = None,
    description: str | None = None,
    operator: OperatorOption = None,
    as_json: JsonOption = False,
) -> None:
    """File a claim received another way (e-mail) for a partner; it is triaged after API claims."""
    settings = context.settings()
    with domain_errors():
        shots = [
            evidence.inspect(p.read_bytes(), settings.max_evidence_bytes, pointer=str(p))
            for p in screenshot or []
        ]
    data = service.ClaimInput(
        order_id=order_id,
        codes=[
            service.CodeClaimInput(code=c, pointer=f"--code {i + 1}", code_region=code_region)
            for i, c in enumerate(codes)
        ],
        problem=problem,
        remedy=remedy,
        redemption=service.Redemption(
            account_region=account_region, attempted_at=attempted_at, error_code=error_code
        ),
        description=description,
        screenshots=shots,
    )
    vault = context.vault()
    store = context.evidence_store()
    with domain_errors(), context.database().session() as session:
        partner = partners.get_partner(session, partner_id)
        claim = service.file_claim(
            session,
            vault,
            store,
            partner,
            data,
            channel=Channel.OPERATOR,
            actor=operator_actor(session, operator),
        )
        result = _view(session, claim)
    emit(result, as_json, lambda: say(f"filed {result['id']}: {_verdicts(result)}"))


@claims_app.command("fulfil")
def claims_fulfil(operator: OperatorOption = None, as_json: JsonOption = False) -> None:
    """Replace what approved claims still wait for, oldest first, as far as stock allows."""
    with domain_errors(), context.database().session() as session:
        resolved = service.fulfil_waiting(session, operator_actor(session, operator))
    emit({"resolved": resolved}, as_json, lambda: say(f"resolved {len(resolved)} claim(s)"))
