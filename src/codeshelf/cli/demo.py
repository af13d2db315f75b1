"""Demo data: two products, one partner with a deposit, stock, a portal owner and a console
admin. Safe to
load twice."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

import pyotp
from sqlalchemy import select
from sqlalchemy.orm import Session

from codeshelf.catalog import service as catalog
from codeshelf.catalog.models import Product
from codeshelf.kit.clock import utcnow
from codeshelf.kit.money import Money
from codeshelf.kit.tokens import hash_key
from codeshelf.kit.vault import Vault
from codeshelf.members.roles import Role, StaffRole
from codeshelf.members.service import invitations, signin
from codeshelf.operators import service as operators
from codeshelf.operators.models import OperatorKey
from codeshelf.partners import service as partners
from codeshelf.partners.models import ApiKey, KeyMode, Partner
from codeshelf.stock import service as stock
from codeshelf.wallet import service as wallet

DEMO_PARTNER = "Demo Reseller"
DEMO_OPERATOR = "demo-operator"
DEMO_MEMBER = "owner@demo-reseller.example"
DEMO_STAFF = "admin@demo-wholesaler.example"  # an admin of the operator console
DEMO_PRODUCTS = (
    # sku, region, face value, face currency, price, price currency
    ("psn-us-50", "US", "50", "USD", "46.50", "USD"),
    ("psn-tr-250", "TR", "250", "TRY", "6.90", "USD"),
)
CODES_PER_PRODUCT = 100
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


@dataclass(frozen=True)
class DemoResult:
    partner_id: str
    api_key: str
    sandbox_key: str
    operator_key: str
    products: list[str]
    member: DemoMember
    staff: DemoMember


@dataclass(frozen=True)
class DemoMember:
    """The demo partner's owner in the portal: what a newcomer signs in with."""

    email: str
    password: str
    totp_secret: str

    def current_code(self) -> str:
        return pyotp.TOTP(self.totp_secret).now()


def _derived(secret: str, label: str) -> bytes:
    return hmac.new(secret.encode(), f"codeshelf demo {label}".encode(), hashlib.sha256).digest()


def demo_api_key(secret: str) -> str:
    """The same key on every run with the same secret, so the demo can be loaded twice."""
    return "cs_live_" + base64.urlsafe_b64encode(_derived(secret, "api key")).decode().rstrip("=")


def demo_sandbox_key(secret: str) -> str:
    return "cs_test_" + base64.urlsafe_b64encode(_derived(secret, "sandbox key")).decode().rstrip(
        "="
    )


def demo_operator_key(secret: str) -> str:
    return "cs_op_" + base64.urlsafe_b64encode(_derived(secret, "operator key")).decode().rstrip(
        "="
    )


def _operator(session: Session, secret: str) -> None:
    key = demo_operator_key(secret)
    digest = hash_key(key)
    if session.scalar(select(OperatorKey.id).where(OperatorKey.key_hash == digest)) is None:
        operators.add_key_with_secret(session, DEMO_OPERATOR, key)


def demo_password(secret: str, label: str = "portal password") -> str:
    return "demo-" + base64.urlsafe_b64encode(_derived(secret, label)).decode()[:20]


def _member(
    session: Session, vault: Vault, secret: str, partner: Partner | None, email: str, role: str
) -> DemoMember:
    """A person made through the same invitation steps as anyone's (once): the partner's
    owner in the portal, or (no partner) an admin of the console."""
    password = demo_password(secret, "portal password" if partner else "console password")
    member = signin.active_member(session, email, staff=partner is None)
    if member is None:
        now = utcnow()
        issued = invitations.invite(session, partner, email, role, "demo", now)
        session.flush()
        enrolment = invitations.choose_password(session, vault, issued.token, password, now)
        code = pyotp.TOTP(enrolment.secret).at(now)
        member = invitations.confirm(session, vault, issued.token, code, now).member
    return DemoMember(email, password, signin.authenticator_secret(vault, member))


def _demo_codes(secret: str, sku: str) -> list[str]:
    codes = []
    for index in range(CODES_PER_PRODUCT):
        digest = _derived(secret, f"code {sku} {index}")
        codes.append("".join(_ALPHABET[byte % len(_ALPHABET)] for byte in digest[:12]))
    return codes


def _partner(session: Session, secret: str) -> Partner:
    partner = session.scalar(select(Partner).where(Partner.name == DEMO_PARTNER))
    if partner is None:
        partner = partners.create_partner(session, DEMO_PARTNER, None).partner
    key = demo_api_key(secret)
    digest = hash_key(key)
    if session.scalar(select(ApiKey.id).where(ApiKey.key_hash == digest)) is None:
        partners.add_key_with_secret(session, partner, key)
    sandbox_key = demo_sandbox_key(secret)
    if session.scalar(select(ApiKey.id).where(ApiKey.key_hash == hash_key(sandbox_key))) is None:
        twin = partners.sandbox_twin(session, partner)
        partners.add_key_with_secret(session, twin, sandbox_key, KeyMode.TEST)
    return partner


def load(session: Session, vault: Vault, secret: str) -> DemoResult:
    for sku, region, face, face_currency, price, price_currency in DEMO_PRODUCTS:
        if session.scalar(select(Product.id).where(Product.sku == sku)) is None:
            catalog.add_product(
                session,
                sku=sku,
                platform="psn",
                region=region,
                face_value=face,
                currency=face_currency,
                price=price,
                price_currency=price_currency,
            )
        batch = f"demo-{sku}"
        if not stock.batch_exists(session, batch):
            lines = enumerate(_demo_codes(secret, sku), start=1)
            stock.import_codes(
                session, vault, sku=sku, batch_reference=batch, lines=lines, supplier="Demo Supply"
            )
    partner = _partner(session, secret)
    _operator(session, secret)
    wallet.deposit(
        session, partner, Money.parse("1000.00", "USD"), f"demo-deposit-{partner.public_id}"
    )
    return DemoResult(
        partner.public_id,
        demo_api_key(secret),
        demo_sandbox_key(secret),
        demo_operator_key(secret),
        [p[0] for p in DEMO_PRODUCTS],
        _member(session, vault, secret, partner, DEMO_MEMBER, Role.OWNER),
        _member(session, vault, secret, None, DEMO_STAFF, StaffRole.ADMIN),
    )
