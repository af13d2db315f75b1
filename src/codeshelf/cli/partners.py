"""``codeshelf partner …``: partner accounts, their API keys and review limits."""

from __future__ import annotations

from typing import Annotated

import typer

from codeshelf.cli import context
from codeshelf.cli.options import JsonOption
from codeshelf.cli.output import domain_errors, emit, fail, say, table
from codeshelf.dossier import service as dossier
from codeshelf.dossier.schemas import PartnerDetailOut, PartnerSummaryOut
from codeshelf.kit.clock import utcnow
from codeshelf.kit.money import InvalidMoneyError, Money
from codeshelf.members.roles import StaffPermission
from codeshelf.members.service import invitations, onboarding
from codeshelf.partners import service as partners
from codeshelf.partners.models import KeyMode

partner_app = typer.Typer(no_args_is_help=True, help="Partner accounts.")
key_app = typer.Typer(no_args_is_help=True, help="A partner's API keys.")
partner_app.add_typer(key_app, name="key")


@partner_app.command("create")
def partner_create(
    name: str,
    rate_limit: Annotated[
        int | None, typer.Option("--rate-limit", min=1, help="Requests per minute per key.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a partner and its first API key (shown once: store it now)."""
    with domain_errors(), context.database().session() as session:
        issued = partners.create_partner(session, name, rate_limit)
    data = {
        "partner_id": issued.partner.public_id,
        "name": issued.partner.name,
        "key_id": issued.api_key.public_id,
        "api_key": issued.secret,
    }

    def render() -> None:
        say(f"partner_id: {data['partner_id']}")
        say(f"key_id:     {data['key_id']}")
        say(f"api_key:    {data['api_key']}  (shown once)")

    emit(data, as_json, render)


@key_app.command("create")
def key_create(
    partner_id: str,
    sandbox: Annotated[
        bool,
        typer.Option("--sandbox", help="A cs_test_ key for the partner's sandbox (no live data)."),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Issue another API key (several may be active, for rotation), or a sandbox key."""
    mode = KeyMode.TEST if sandbox else KeyMode.LIVE
    with domain_errors(), context.database().session() as session:
        issued = partners.create_key(session, partner_id, mode)
    data = {
        "partner_id": partner_id,
        "key_id": issued.api_key.public_id,
        "mode": mode,
        "api_key": issued.secret,
    }
    emit(
        data,
        as_json,
        lambda: say(f"{data['key_id']}: {data['api_key']} (shown once)"),
    )


@key_app.command("revoke")
def key_revoke(partner_id: str, key_id: str, as_json: JsonOption = False) -> None:
    """Revoke an API key; requests with it get 401 from now on."""
    with domain_errors(), context.database().session() as session:
        api_key = partners.revoke_key(session, partner_id, key_id)
    data = {"partner_id": partner_id, "key_id": key_id, "revoked_at": api_key.revoked_at}
    emit(data, as_json, lambda: say(f"revoked {key_id}"))


@key_app.command("list")
def key_list(partner_id: str, as_json: JsonOption = False) -> None:
    """A partner's keys (their prefixes, never the keys)."""
    with domain_errors(), context.database().read_session() as session:
        keys = partners.list_keys(session, partner_id)
    data = [
        {
            "key_id": k.public_id,
            "mode": k.mode,
            "prefix": k.prefix,
            "created_at": k.created_at,
            "revoked_at": k.revoked_at,
        }
        for k in keys
    ]
    rows = [(k.public_id, k.mode, f"{k.prefix}…", k.created_at, k.revoked_at or "") for k in keys]
    headers = ["key_id", "mode", "prefix", "created", "revoked"]
    emit(data, as_json, lambda: table("API keys", headers, rows))


@partner_app.command("limits")
def partner_limits(
    partner_id: str,
    quantity_over: Annotated[
        int | None, typer.Option("--quantity-over", min=1, help="Review orders of more codes.")
    ] = None,
    amount_over: Annotated[
        str | None,
        typer.Option("--amount-over", help='Review orders costing more, e.g. "5000 USD".'),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Set the partner's manual-review limits (without options: back to the defaults)."""
    limit = None
    if amount_over is not None:
        amount, _, currency = amount_over.strip().partition(" ")
        try:
            limit = Money.parse(amount, currency.strip())
        except InvalidMoneyError as exc:
            fail(f'--amount-over: {exc} (write it as "5000 USD")')
    with domain_errors(), context.database().session() as session:
        actor = context.actor_with(session, StaffPermission.MANAGE_PARTNERS)
        partner = partners.get_partner(session, partner_id)
        partners.set_review_limits(session, partner, quantity_over, limit, actor)
    data = {
        "partner_id": partner_id,
        "quantity_over": quantity_over,
        "amount_over": None if limit is None else limit.as_json(),
    }
    limits = [f"{quantity_over} codes" if quantity_over else "", str(limit) if limit else ""]
    described = " or ".join(part for part in limits if part) or "the operator-wide defaults"
    emit(data, as_json, lambda: say(f"{partner_id}: orders above {described} go to review"))


@partner_app.command("rate-limit")
def partner_rate_limit(
    partner_id: str,
    per_minute: Annotated[
        int | None,
        typer.Argument(min=1, help="Requests a minute per key; leave out for the default."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Set the partner's rate limit (without a number: back to CODESHELF_RATE_LIMIT_PER_MINUTE)."""
    with domain_errors(), context.database().session() as session:
        actor = context.actor_with(session, StaffPermission.MANAGE_PARTNERS)
        partner = partners.get_partner(session, partner_id)
        partners.set_rate_limit(session, partner, per_minute, actor)
    effective = per_minute or context.settings().rate_limit_per_minute
    data = {"partner_id": partner_id, "per_minute": per_minute, "effective_per_minute": effective}
    own = "" if per_minute else " (the default)"
    emit(data, as_json, lambda: say(f"{partner_id}: {effective} requests a minute per key{own}"))


@partner_app.command("open")
def partner_open(
    name: str,
    owner: Annotated[str, typer.Option("--owner", help="The owner's e-mail: invited.")],
    rate_limit: Annotated[
        int | None, typer.Option("--rate-limit", min=1, help="Requests per minute per key.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Open a partner and invite its owner: prints the one-time link (valid 72 h). The owner
    makes the API keys in the portal."""
    settings = context.settings()
    with domain_errors(), context.database().session() as session:
        actor = context.actor_with(session, StaffPermission.MANAGE_PARTNERS)
        opened = onboarding.open_partner(session, name, owner, actor, utcnow(), rate_limit)
        data = {
            "partner_id": opened.partner.public_id,
            "name": opened.partner.name,
            **invitation_json(opened.invitation, settings.public_url),
        }
    emit(
        data,
        as_json,
        lambda: say(
            f"partner {data['partner_id']} ({data['name']}); invitation for its owner "
            f"{data['email']}: {data['link']}"
        ),
    )


@partner_app.command("list")
def partner_list(as_json: JsonOption = False) -> None:
    """Every live partner: balances, open claims, keys, deposits waiting for a second person."""
    with context.database().read_session() as session:
        found = dossier.partner_list(session)
    data = [PartnerSummaryOut.of(summary).model_dump(mode="json") for summary in found]
    rows = [
        (s.partner_id, s.name, _amounts(s.available), _amounts(s.held), s.open_claims,
         s.active_keys, s.pending_deposits)
        for s in found
    ]  # fmt: skip
    headers = ["partner", "name", "available", "held", "open claims", "keys", "deposits waiting"]
    emit(data, as_json, lambda: table("partners", headers, rows))


def _amounts(money: list[Money]) -> str:
    return ", ".join(str(m) for m in money) or "-"


@partner_app.command("show")
def partner_show(partner_id: str, as_json: JsonOption = False) -> None:
    """A partner's balances, limits, prices, keys, members, claims and waiting deposits."""
    with domain_errors(), context.database().read_session() as session:
        detail = dossier.partner_detail(session, partner_id, utcnow())
    out = PartnerDetailOut.of(detail, context.settings().rate_limit_per_minute)
    emit(out.model_dump(mode="json"), as_json, lambda: _render_detail(detail, out))


def _render_detail(detail: dossier.PartnerDetail, out: PartnerDetailOut) -> None:
    review = detail.review
    say(f"{detail.partner_id}  {detail.name}  (since {detail.created_at:%Y-%m-%d})")
    say(f"available:  {_amounts(detail.available)}; held: {_amounts(detail.held)}")
    if detail.credit_limits:
        say(f"credit:     {_amounts(detail.credit_limits)}")
    own = "" if detail.rate_limit_per_minute else " (default)"
    say(f"rate limit: {out.rate_limit.effective_per_minute} a minute per key{own}")
    quantity = f"{review.quantity_over} codes" if review.quantity_over else "default"
    amount = str(review.amount_over) if review.amount_over else "default"
    say(f"review:     above {quantity}; above {amount}")
    claims = ", ".join(f"{status} {n}" for status, n in detail.claims.items()) or "none"
    say(f"claims:     {claims}")
    table("prices", ["sku", "price", "default"],
          [(p.sku, p.price, p.default) for p in detail.prices])  # fmt: skip
    table(
        "API keys",
        ["key_id", "mode", "prefix", "created", "last used", "revoked"],
        [(k.key_id, k.mode, f"{k.prefix}…", k.created_at, k.last_used_at or "", k.revoked_at or "")
         for k in detail.keys],
    )  # fmt: skip
    people = [*detail.members, *detail.invitations]
    table(
        "members",
        ["member_id", "email", "role", "since"],
        [(m.member_id or "(invited)", m.email, m.role, m.since) for m in people],
    )
    for request in detail.pending_deposits:
        say(f"deposit waiting: {request.id} {request.amount} ({request.reference})")


member_app = typer.Typer(no_args_is_help=True, help="A partner's portal members.")
partner_app.add_typer(member_app, name="member")


@member_app.command("invite")
def member_invite(
    partner_id: str,
    email: str,
    role: Annotated[
        str,
        typer.Option("--role", help="owner, admin, buyer, support, finance or developer."),
    ],
    as_json: JsonOption = False,
) -> None:
    """Invite a member: prints a one-time link (valid 72 h) to set a password and 2FA."""
    settings = context.settings()
    with domain_errors(), context.database().session() as session:
        partner = partners.get_partner(session, partner_id)
        issued = invitations.invite(session, partner, email, role, context.actor(session), utcnow())
        data = {"partner_id": partner_id, **invitation_json(issued, settings.public_url)}
    emit_invitation(data, as_json)


def invitation_json(issued: invitations.IssuedInvitation, public_url: str) -> dict[str, str]:
    return {
        "email": issued.invitation.email,
        "role": issued.invitation.role,
        "expires_at": issued.invitation.expires_at.isoformat(),
        "link": public_url.rstrip("/") + issued.path,
    }


def emit_invitation(data: dict[str, str], as_json: bool) -> None:
    emit(
        data,
        as_json,
        lambda: say(f"invitation for {data['email']} ({data['role']}): {data['link']}"),
    )
