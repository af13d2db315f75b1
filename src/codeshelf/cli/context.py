"""What every command needs: settings, the database, the vault.

A program that embeds the CLI (the test suite, a console) may hand it a ``Database`` as the
root context's ``obj``; commands then use it instead of opening ``CODESHELF_DATABASE_URL``.
"""

from __future__ import annotations

from contextvars import ContextVar

from pydantic import ValidationError
from sqlalchemy.orm import Session

from codeshelf.audit import service as audit
from codeshelf.claims.evidence import EvidenceStore
from codeshelf.cli.output import fail
from codeshelf.kit import migrate
from codeshelf.kit.db import Database
from codeshelf.kit.settings import MissingSecretKeyError, Settings, get_settings
from codeshelf.kit.vault import Vault
from codeshelf.members.models import Member
from codeshelf.members.roles import StaffPermission, staff_can
from codeshelf.members.service import staff

_given: ContextVar[Database | None] = ContextVar("codeshelf_cli_database", default=None)
_acting_as: ContextVar[str | None] = ContextVar("codeshelf_cli_acting_as", default=None)


def adopt(obj: object) -> None:
    """Use ``obj`` as the database for this invocation if it is one (else open our own)."""
    _given.set(obj if isinstance(obj, Database) else None)


def act_as(email: str | None) -> None:
    """Act as this staff member (``codeshelf --as EMAIL``): decisions name them in the log."""
    _acting_as.set(email)


def acting_member(session: Session) -> Member | None:
    """The staff member ``--as`` names (fails when there is no such active staff member)."""
    email = _acting_as.get()
    if email is None:
        return None
    try:
        return staff.by_email(session, email)
    except staff.StaffMemberNotFoundError as exc:
        fail(f"--as: {exc.detail}")


def actor(session: Session) -> str:
    """Who the audit log says acted: the ``--as`` staff member, else ``operator:cli``."""
    member = acting_member(session)
    return staff.actor(member) if member is not None else audit.OPERATOR_CLI


def actor_with(session: Session, permission: StaffPermission, *, named: str = "") -> str:
    """The actor of a command that needs ``permission``: the ``--as`` staff member if their
    role has it (else the command fails), or ``operator:cli`` when nobody is named, unless
    ``named`` says why a named person is needed (four eyes)."""
    member = acting_member(session)
    if member is None:
        if named:
            fail(f"{named} needs a named person: codeshelf --as EMAIL …")
        return audit.OPERATOR_CLI
    if not staff_can(member.role, permission):
        fail(f"--as: {member.email} is {member.role} staff, without the {permission} permission")
    return staff.actor(member)


def settings() -> Settings:
    try:
        return get_settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"CODESHELF_{'_'.join(str(part) for part in error['loc']).upper()}: {error['msg']}"
            for error in exc.errors()
        )
        fail(f"invalid settings: {problems}")


def database(*, migrate_if_behind: bool = False) -> Database:
    given = _given.get()
    if given is not None:
        return given
    url = settings().database_url
    if migrate_if_behind:
        migrate.ensure_current(url)
    elif not migrate.is_current(url):
        fail("the database schema is not current; run `codeshelf migrate` first")
    return Database(url)


def release(db: Database) -> None:
    """Close the database's connections, unless it was handed to us."""
    if db is not _given.get():
        db.dispose()


def vault() -> Vault:
    try:
        return Vault(settings().require_secret(), settings().previous_secrets())
    except MissingSecretKeyError as exc:
        fail(str(exc))


def evidence_store() -> EvidenceStore:
    return EvidenceStore(settings().evidence_dir, vault())
