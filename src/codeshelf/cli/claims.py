"""``codeshelf claims …`` (the triage queue and decisions) and ``codeshelf operator key …``."""

from __future__ import annotations

import getpass
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy.orm import Session

from codeshelf.claims import evidence, service
from codeshelf.claims.models import Channel, Claim, RemedyKind
from codeshelf.cli import context
from codeshelf.cli.output import domain_errors, emit, fail, say, table
from codeshelf.kit.errors import InvalidInputError
from codeshelf.operators import service as operators
from codeshelf.partners import service as partners
from codeshelf.partners.models import Partner

claims_app = typer.Typer(no_args_is_help=True, help="Code-support claims: the triage queue.")
operator_app = typer.Typer(no_args_is_help=True, help="Operators.")
operator_key_app = typer.Typer(no_args_is_help=True, help="Keys for the operator API.")
operator_app.add_typer(operator_key_app, name="key")

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
OperatorOption = Annotated[
    str | None,
    typer.Option(
        "--operator",
        envvar="CODESHELF_OPERATOR",
        help="Who decides (written to the audit log); default: your login name.",
    ),
]
ReasonOption = Annotated[str | None, typer.Option("--reason", help="Why (kept in the audit log).")]


def operator_actor(name: str | None) -> service.Actor:
    try:
        return service.Actor(f"operator:{operators.check_name(name or getpass.getuser())}")
    except InvalidInputError as exc:
        fail(f"--operator: {exc.detail}")


def claim_json(session: Session, claim: Claim, *, detailed: bool = False) -> dict[str, Any]:
    order_ids = service.order_public_ids(session, claim)
    partner = session.get_one(Partner, claim.partner_id)
    data: dict[str, Any] = {
        "id": claim.public_id,
        "partner_id": partner.public_id,
        "order_id": order_ids[claim.order_id],
        "status": claim.status,
        "channel": claim.channel,
        "priority": claim.priority,
        "policy_version": claim.policy_version,
        "problem": claim.problem,
        "remedy": claim.remedy,
        "due_at": claim.due_at,
        "overdue": service.is_overdue(claim),
        "triage_due_at": claim.triage_due_at,
        "remedy_due_at": claim.remedy_due_at,
        "upstream_due_at": claim.upstream_due_at,
        "submitted_at": claim.submitted_at,
        "codes": [
            {
                "code": c.masked,
                "problem": c.problem,
                "classification": c.classification,
                "verdict": c.verdict,
                "rule": c.rule,
                "missing": c.missing,
                "code_region": c.code_region,
                "error_code": c.error_code,
                "remedy": None
                if c.remedy is None
                else {
                    "kind": c.remedy.kind,
                    "state": c.remedy.state,
                    "replacement_order_id": order_ids.get(c.remedy.replacement_order_id or 0),
                    "refunded_minor": c.remedy.amount_minor,
                },
            }
            for c in claim.codes
        ],
        "customer_message": service.customer_message(claim),
    }
    if detailed:
        data.update(
            account_region=claim.account_region,
            attempted_at=claim.attempted_at,
            error_code=claim.error_code,
            exposed_publicly=claim.exposed_publicly,
            description=claim.description,
            info_request=claim.info_request,
            decision_rule=claim.decision_rule,
            decision_reason=claim.decision_reason,
            evidence=[
                {
                    "id": e.public_id,
                    "media_type": e.media_type,
                    "bytes": e.size_bytes,
                    "sha256": e.sha256,
                }
                for e in claim.evidence
            ],
            history=[vars(h) for h in service.history(session, claim)],
        )
    return data


def _verdicts(data: dict[str, Any]) -> str:
    return ", ".join(f"{c['code'][-4:]}:{c['verdict']}" for c in data["codes"])


@claims_app.command("list")
def claims_list(
    status: Annotated[str | None, typer.Option(help="Only this status (default: open).")] = None,
    overdue: Annotated[bool, typer.Option("--overdue", help="Only past their deadline.")] = False,
    as_json: JsonOption = False,
) -> None:
    """The triage queue: open claims, most urgent first (deadline, then API claims)."""
    with domain_errors(), context.database().read_session() as session:
        data = [
            claim_json(session, c) for c in service.queue(session, status=status, overdue=overdue)
        ]
    rows = [
        (
            d["id"],
            d["partner_id"],
            d["status"],
            d["channel"],
            _verdicts(d),
            d["due_at"] or "",
            "OVERDUE" if d["overdue"] else "",
        )
        for d in data
    ]
    columns = ["claim", "partner", "status", "channel", "verdicts", "due", ""]
    emit(data, as_json, lambda: table("claims", columns, rows))


@claims_app.command("show")
def claims_show(claim_id: str, as_json: JsonOption = False) -> None:
    """A claim: evidence, verdicts with their rules, each code's history."""
    with domain_errors(), context.database().read_session() as session:
        data = claim_json(session, service.get_claim(session, claim_id), detailed=True)

    def render() -> None:
        say(f"{data['id']}  {data['status']}  ({data['channel']}, policy {data['policy_version']})")
        say(f"partner {data['partner_id']}  order {data['order_id']}  remedy {data['remedy']}")
        say(
            f"problem {data['problem']}; account region {data['account_region']}; "
            f"attempted {data['attempted_at']}; error {data['error_code']}"
        )
        if data["description"]:
            say(f"description: {data['description']}")
        say(f"due {data['due_at']}{'  OVERDUE' if data['overdue'] else ''}")
        for code in data["codes"]:
            missing = f" missing {', '.join(code['missing'])}" if code["missing"] else ""
            remedy = f" remedy {code['remedy']}" if code["remedy"] else ""
            say(f"  {code['code']}: {code['verdict']} ({code['rule'] or '-'}){missing}{remedy}")
        for item in data["evidence"]:
            say(
                f"  evidence {item['id']}: {item['media_type']} {item['bytes']} B "
                f"sha256 {item['sha256']}"
            )
        for h in data["history"]:
            say(
                f"  {h['masked']}: batch {h['batch']} from {h['supplier']}, delivered "
                f"{h['delivered_at']}, fetched {h['retrievals']}x, state {h['state']}, "
                f"other claims on batch: {', '.join(h['earlier_claims_on_batch']) or 'none'}"
            )
        say(f"customer message: {data['customer_message']}")

    emit(data, as_json, render)


def _decide(claim_id: str, as_json: bool, verb: str, decide: Callable[[Session], Claim]) -> None:
    with domain_errors(), context.database().session() as session:
        claim = decide(session)
        data = claim_json(session, claim)
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
        lambda s: service.triage(s, claim_id, operator_actor(operator)),
    )


@claims_app.command("approve")
def claims_approve(
    claim_id: str,
    reason: Annotated[str, typer.Option(help="Why (kept in the audit log).")] = ...,  # type: ignore[assignment]
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
        lambda s: service.approve(s, claim_id, operator_actor(operator), reason, override=override),
    )


@claims_app.command("reject")
def claims_reject(
    claim_id: str,
    reason: Annotated[str, typer.Option(help="Why (kept in the audit log).")] = ...,  # type: ignore[assignment]
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
        lambda s: service.reject(s, claim_id, operator_actor(operator), reason, rule),
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
        lambda s: service.request_info(s, claim_id, operator_actor(operator), reason),
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
        lambda s: service.escalate(s, claim_id, operator_actor(operator), reason, holidays),
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
        lambda s: service.resolve(s, claim_id, operator_actor(operator)),
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
            actor=operator_actor(operator),
        )
        result = claim_json(session, claim)
    emit(result, as_json, lambda: say(f"filed {result['id']}: {_verdicts(result)}"))


@claims_app.command("fulfil")
def claims_fulfil(operator: OperatorOption = None, as_json: JsonOption = False) -> None:
    """Replace what approved claims still wait for, oldest first, as far as stock allows."""
    with domain_errors(), context.database().session() as session:
        resolved = service.fulfil_waiting(session, operator_actor(operator))
    emit({"resolved": resolved}, as_json, lambda: say(f"resolved {len(resolved)} claim(s)"))


@operator_key_app.command("create")
def operator_key_create(name: str, as_json: JsonOption = False) -> None:
    """Issue a key for the operator API (/api/v1/admin); shown once."""
    with domain_errors(), context.database().session() as session:
        issued = operators.create_key(session, name)
    data = {"key_id": issued.key.public_id, "name": issued.key.name, "api_key": issued.secret}
    emit(data, as_json, lambda: say(f"{data['key_id']} ({name}): {data['api_key']} (shown once)"))


@operator_key_app.command("revoke")
def operator_key_revoke(key_id: str, as_json: JsonOption = False) -> None:
    with domain_errors(), context.database().session() as session:
        key = operators.revoke_key(session, key_id)
        data = {"key_id": key.public_id, "revoked_at": key.revoked_at}
    emit(data, as_json, lambda: say(f"revoked {key_id}"))


@operator_key_app.command("list")
def operator_key_list(as_json: JsonOption = False) -> None:
    with context.database().read_session() as session:
        keys = operators.list_keys(session)
        data = [
            {
                "key_id": k.public_id,
                "name": k.name,
                "prefix": k.prefix,
                "created_at": k.created_at,
                "revoked_at": k.revoked_at,
            }
            for k in keys
        ]
    rows = [
        (d["key_id"], d["name"], f"{d['prefix']}…", d["created_at"], d["revoked_at"] or "")
        for d in data
    ]
    emit(
        data,
        as_json,
        lambda: table("operator keys", ["key_id", "name", "prefix", "created", "revoked"], rows),
    )
