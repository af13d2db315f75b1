"""``codeshelf operator key …``: keys for the operator API."""

from __future__ import annotations

from typing import Annotated

import typer

from codeshelf.cli import context
from codeshelf.cli.options import JsonOption
from codeshelf.cli.output import domain_errors, emit, say, table
from codeshelf.cli.partners import emit_invitation, invitation_json
from codeshelf.kit.clock import utcnow
from codeshelf.members.service import staff
from codeshelf.operators import service as operators

operator_app = typer.Typer(no_args_is_help=True, help="Operators.")
operator_key_app = typer.Typer(no_args_is_help=True, help="Keys for the operator API.")
operator_app.add_typer(operator_key_app, name="key")
operator_member_app = typer.Typer(
    no_args_is_help=True, help="Staff members: the people who sign in to the console (/ops/)."
)
operator_app.add_typer(operator_member_app, name="member")


@operator_member_app.command("invite")
def operator_member_invite(
    email: str,
    role: Annotated[str, typer.Option("--role", help="admin, support, finance or stock.")],
    as_json: JsonOption = False,
) -> None:
    """Invite a staff member: prints a one-time link (valid 72 h) to set a password and 2FA."""
    settings = context.settings()
    with domain_errors(), context.database().session() as session:
        issued = staff.invite(session, context.acting_member(session), email, role, utcnow())
        data = invitation_json(issued, settings.public_url)
    emit_invitation(data, as_json)


@operator_member_app.command("list")
def operator_member_list(as_json: JsonOption = False) -> None:
    with context.database().read_session() as session:
        data = [
            {"member_id": m.public_id, "email": m.email, "role": m.role, "since": m.created_at}
            for m in staff.staff(session)
        ]
    rows = [(d["member_id"], d["email"], d["role"], d["since"]) for d in data]
    emit(data, as_json, lambda: table("staff", ["member_id", "email", "role", "since"], rows))


@operator_member_app.command("role")
def operator_member_role(member_id: str, role: str, as_json: JsonOption = False) -> None:
    """Give a staff member another role (admin, support, finance or stock); an admin remains."""
    with domain_errors(), context.database().session() as session:
        changed = staff.change_role(session, context.acting_member(session), member_id, role)
        data = {"member_id": changed.public_id, "email": changed.email, "role": changed.role}
    emit(data, as_json, lambda: say(f"{data['email']} is now {data['role']}"))


@operator_member_app.command("remove")
def operator_member_remove(member_id: str, as_json: JsonOption = False) -> None:
    """Remove a staff member; their console sessions end at once."""
    with domain_errors(), context.database().session() as session:
        removed = staff.remove(session, context.acting_member(session), member_id, utcnow())
        data = {"member_id": removed.public_id, "email": removed.email}
    emit(data, as_json, lambda: say(f"removed {data['email']}"))


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
