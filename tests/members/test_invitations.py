"""Invitations: one-time links that expire, to one address, for one role; the CLI prints them."""

from __future__ import annotations

import json
from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import select

from codeshelf.audit.models import AuditEvent
from codeshelf.kit.clock import utcnow
from codeshelf.kit.db import Database
from codeshelf.kit.errors import InvalidInputError
from codeshelf.kit.vault import Vault
from codeshelf.members.models import Member
from codeshelf.members.service import invitations
from codeshelf.partners import service as partners
from tests.fixtures.browser import PASSWORD
from tests.fixtures.factories import Shop, run_cli


def _invite(db: Database, shop: Shop, email: str = "dana@acme.example", role: str = "buyer"):  # type: ignore[no-untyped-def]
    with db.session() as session:
        partner = partners.get_partner(session, shop.a.id)
        return invitations.invite(session, partner, email, role, "operator:test", utcnow())


def test_an_invitation_expires_after_72_hours(db: Database, shop: Shop, vault: Vault) -> None:
    issued = _invite(db, shop)
    with db.session() as session:
        later = utcnow() + timedelta(hours=72, seconds=1)
        with pytest.raises(invitations.InvitationUnusableError):
            invitations.choose_password(session, vault, issued.token, PASSWORD, later)
        invitations.choose_password(session, vault, issued.token, PASSWORD, utcnow())


def test_a_new_invitation_to_the_same_address_revokes_the_old_one(db: Database, shop: Shop) -> None:
    first, second = _invite(db, shop), _invite(db, shop)
    with db.session() as session:
        with pytest.raises(invitations.InvitationUnusableError):
            invitations.open_invitation(session, first.token, utcnow())
        assert invitations.open_invitation(session, second.token, utcnow()).role == "buyer"


@pytest.mark.parametrize(("email", "role"), [("not-an-address", "buyer"), ("a@b.example", "root")])
def test_bad_addresses_and_roles_are_refused(
    db: Database, shop: Shop, email: str, role: str
) -> None:
    with pytest.raises(InvalidInputError):
        _invite(db, shop, email, role)


def test_the_member_exists_only_once_its_authenticator_answered(
    db: Database, shop: Shop, vault: Vault
) -> None:
    issued = _invite(db, shop, "Dana@Acme.Example")
    with db.session() as session:
        enrolment = invitations.choose_password(session, vault, issued.token, PASSWORD, utcnow())
        assert session.scalar(select(Member)) is None
        with pytest.raises(invitations.WrongCodeError):
            invitations.confirm(session, vault, issued.token, "123456", utcnow())
        accepted = invitations.confirm(
            session, vault, issued.token, pyotp.TOTP(enrolment.secret).now(), utcnow()
        )
        assert accepted.member.email == "dana@acme.example" and accepted.member.role == "buyer"
        assert accepted.member.password_hash.startswith("$argon2id$")
        assert PASSWORD not in str(accepted.member.totp_sealed)
        actions = session.scalars(select(AuditEvent.action)).all()
        assert "member.invite" in actions and "member.join" in actions
        with pytest.raises(invitations.MemberExistsError):
            _invite(db, shop, "dana@acme.example")


def test_the_cli_prints_the_link_once(db: Database, shop: Shop) -> None:
    result = run_cli(
        db.url, "partner", "member", "invite", shop.a.id, "ops@acme.example", "--role", "admin",
        "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["role"] == "admin" and data["link"].startswith(
        "http://127.0.0.1:8000/account/invite/"
    )
    refused = run_cli(
        db.url, "partner", "member", "invite", shop.a.id, "x@acme.example", "--role", "god"
    )
    assert refused.exit_code != 0 and "role must be one of" in refused.output
