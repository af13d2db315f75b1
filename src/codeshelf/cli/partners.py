"""``codeshelf partner …``: partner accounts, their API keys and review limits."""

from __future__ import annotations

from typing import Annotated

import typer

from codeshelf.cli import context
from codeshelf.cli.options import JsonOption
from codeshelf.cli.output import domain_errors, emit, fail, say, table
from codeshelf.kit.clock import utcnow
from codeshelf.kit.money import InvalidMoneyError, Money
from codeshelf.members.service import invitations
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
        partner = partners.get_partner(session, partner_id)
        partners.set_review_limits(session, partner, quantity_over, limit)
    data = {
        "partner_id": partner_id,
        "quantity_over": quantity_over,
        "amount_over": None if limit is None else limit.as_json(),
    }
    limits = [f"{quantity_over} codes" if quantity_over else "", str(limit) if limit else ""]
    described = " or ".join(part for part in limits if part) or "the operator-wide defaults"
    emit(data, as_json, lambda: say(f"{partner_id}: orders above {described} go to review"))


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
