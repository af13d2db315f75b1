"""Partner accounts and their API keys.

Keys are 256-bit random tokens (``cs_live_…``) shown once; only their hash is stored
(``kit.tokens``).
"""

from __future__ import annotations

import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, make_transient_to_detached

from codeshelf.audit import service as audit
from codeshelf.kit.clock import utcnow
from codeshelf.kit.db import table_of
from codeshelf.kit.errors import InvalidInputError, NotFoundError
from codeshelf.kit.ids import public_id
from codeshelf.kit.money import Money
from codeshelf.kit.reads import AsyncReads
from codeshelf.kit.tokens import hash_key, same_hash
from codeshelf.partners.models import ApiKey, KeyMode, Partner

KEY_PREFIX = {KeyMode.LIVE: "cs_live_", KeyMode.TEST: "cs_test_"}


class PartnerNotFoundError(NotFoundError):
    slug = "partner-not-found"


class ApiKeyNotFoundError(NotFoundError):
    slug = "api-key-not-found"


@dataclass(frozen=True)
class IssuedKey:
    partner: Partner
    api_key: ApiKey
    secret: str  # the plaintext key; never stored, shown once


def create_partner(
    session: Session,
    name: str,
    rate_limit_per_minute: int | None,
    actor: str = audit.OPERATOR_CLI,
) -> IssuedKey:
    """A new partner and its first live key (shown once)."""
    return issue_key(session, new_partner(session, name, rate_limit_per_minute, actor))


def new_partner(
    session: Session, name: str, rate_limit_per_minute: int | None, actor: str
) -> Partner:
    """A new partner with no key yet (its owner makes keys in the portal)."""
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidInputError("partner name must be 1 to 200 characters", pointer="#/name")
    if rate_limit_per_minute is not None and rate_limit_per_minute < 1:
        raise InvalidInputError("rate limit must be at least 1 per minute")
    partner = Partner(
        public_id=public_id("ptr"), name=name, rate_limit_per_minute=rate_limit_per_minute
    )
    session.add(partner)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="partner.create",
        partner_public_id=partner.public_id,
        details={"name": name, "rate_limit_per_minute": rate_limit_per_minute},
    )
    return partner


def get_partner(session: Session, partner_public_id: str) -> Partner:
    partner = session.scalar(select(Partner).where(Partner.public_id == partner_public_id))
    if partner is None:
        raise PartnerNotFoundError(f"no partner {partner_public_id}")
    return partner


def issue_key(
    session: Session, partner: Partner, mode: KeyMode = KeyMode.LIVE, actor: str | None = None
) -> IssuedKey:
    secret = KEY_PREFIX[mode] + secrets.token_urlsafe(32)
    return add_key_with_secret(session, partner, secret, mode, actor)


def add_key_with_secret(
    session: Session,
    partner: Partner,
    secret: str,
    mode: KeyMode = KeyMode.LIVE,
    actor: str | None = None,
) -> IssuedKey:
    """Store a key whose secret the caller made (the demo derives its key from the secret)."""
    api_key = ApiKey(
        public_id=public_id("key"),
        partner_id=partner.id,
        mode=mode,
        key_hash=hash_key(secret),
        prefix=secret[:12],
    )
    session.add(api_key)
    session.flush()
    audit.record(
        session,
        actor=actor or audit.OPERATOR_CLI,
        action="api_key.create",
        partner_public_id=partner.public_id,
        api_key_public_id=api_key.public_id,
    )
    return IssuedKey(partner, api_key, secret)


def create_key(
    session: Session,
    partner_public_id: str,
    mode: KeyMode = KeyMode.LIVE,
    actor: str | None = None,
) -> IssuedKey:
    """A live key, or (``mode="test"``) a cs_test_ key for the partner's sandbox twin."""
    partner = get_partner(session, partner_public_id)
    if partner.is_sandbox:
        raise InvalidInputError(f"{partner_public_id} is a sandbox partner; name its live twin")
    if mode == KeyMode.TEST:
        return issue_key(session, sandbox_twin(session, partner), KeyMode.TEST, actor)
    return issue_key(session, partner, actor=actor)


def sandbox_twin(session: Session, partner: Partner) -> Partner:
    """The partner's sandbox: a partner of its own, so no live row is ever in its reach."""
    twin = _twin_of(session, partner)
    if twin is not None:
        return twin
    try:
        with session.begin_nested():
            twin = Partner(
                public_id=public_id("ptr"),
                name=f"{partner.name[:190]} (sandbox)",
                rate_limit_per_minute=partner.rate_limit_per_minute,
                sandbox_of_id=partner.id,
                review_quantity_over=partner.review_quantity_over,
                review_amount_over_minor=partner.review_amount_over_minor,
                review_amount_currency=partner.review_amount_currency,
            )
            session.add(twin)
    except IntegrityError:  # created at this very moment by another request: that one counts
        found = _twin_of(session, partner)
        assert found is not None  # the insert just collided with it
        return found
    audit.record(
        session,
        actor=audit.OPERATOR_CLI,
        action="partner.sandbox_create",
        partner_public_id=partner.public_id,
        subject=twin.public_id,
    )
    return twin


def _twin_of(session: Session, partner: Partner) -> Partner | None:
    return session.scalar(select(Partner).where(Partner.sandbox_of_id == partner.id))


def _own_and_sandbox_ids(session: Session, partner: Partner) -> list[int]:
    twin = _twin_of(session, partner)
    return [partner.id] if twin is None else [partner.id, twin.id]


def set_review_limits(
    session: Session,
    partner: Partner,
    quantity_over: int | None,
    amount_over: Money | None,
    actor: str = audit.OPERATOR_CLI,
) -> None:
    """Orders above these go to manual review (None: the operator-wide default applies).

    The partner's sandbox gets the same limits, so review can be rehearsed as it will happen.
    """
    if partner.is_sandbox:
        raise InvalidInputError(f"{partner.public_id} is a sandbox partner; name its live twin")
    if quantity_over is not None and quantity_over < 1:
        raise InvalidInputError("the quantity limit must be at least 1")
    if amount_over is not None and amount_over.minor <= 0:
        raise InvalidInputError("the amount limit must be positive")
    for target in (partner, _twin_of(session, partner)):
        if target is None:
            continue
        target.review_quantity_over = quantity_over
        target.review_amount_over_minor = None if amount_over is None else amount_over.minor
        target.review_amount_currency = None if amount_over is None else amount_over.currency
    audit.record(
        session,
        actor=actor,
        action="partner.review_limits",
        partner_public_id=partner.public_id,
        details={
            "quantity_over": quantity_over,
            "amount_over": None if amount_over is None else amount_over.as_json(),
        },
    )


def set_rate_limit(
    session: Session, partner: Partner, per_minute: int | None, actor: str = audit.OPERATOR_CLI
) -> None:
    """Requests a minute per key (None: ``CODESHELF_RATE_LIMIT_PER_MINUTE``), for the partner
    and its sandbox alike."""
    if partner.is_sandbox:
        raise InvalidInputError(f"{partner.public_id} is a sandbox partner; name its live twin")
    if per_minute is not None and per_minute < 1:
        raise InvalidInputError("rate limit must be at least 1 per minute", pointer="#/per_minute")
    previous = partner.rate_limit_per_minute
    for target in (partner, _twin_of(session, partner)):
        if target is not None:
            target.rate_limit_per_minute = per_minute
    audit.record(
        session,
        actor=actor,
        action="partner.rate_limit",
        partner_public_id=partner.public_id,
        details={"per_minute": per_minute, "previous": previous},
    )


def active_key_counts(session: Session, partner_ids: Collection[int]) -> dict[int, int]:
    """How many unrevoked keys (live, and its sandbox's) each partner has."""
    owner = func.coalesce(Partner.sandbox_of_id, Partner.id)
    rows = session.execute(
        select(owner, func.count(ApiKey.id))
        .join(ApiKey, ApiKey.partner_id == Partner.id)
        .where(owner.in_(partner_ids), ApiKey.revoked_at.is_(None))
        .group_by(owner)
    )
    return {partner_id: int(count) for partner_id, count in rows}


def revoke_key(
    session: Session, partner_public_id: str, key_public_id: str, actor: str | None = None
) -> ApiKey:
    partner = get_partner(session, partner_public_id)
    api_key = session.scalar(
        select(ApiKey).where(
            ApiKey.public_id == key_public_id,
            ApiKey.partner_id.in_(_own_and_sandbox_ids(session, partner)),
        )
    )
    if api_key is None:
        raise ApiKeyNotFoundError(f"partner {partner_public_id} has no key {key_public_id}")
    if api_key.revoked_at is None:
        api_key.revoked_at = utcnow()
        audit.record(
            session,
            actor=actor or audit.OPERATOR_CLI,
            action="api_key.revoke",
            partner_public_id=partner.public_id,
            api_key_public_id=api_key.public_id,
        )
    return api_key


def list_keys(session: Session, partner_public_id: str) -> list[ApiKey]:
    partner = get_partner(session, partner_public_id)
    owners = _own_and_sandbox_ids(session, partner)
    return list(
        session.scalars(select(ApiKey).where(ApiKey.partner_id.in_(owners)).order_by(ApiKey.id))
    )


_PARTNERS, _KEYS = table_of(Partner), table_of(ApiKey)
_M = TypeVar("_M", Partner, ApiKey)

# The one statement that authenticates every request: the partner and its live key by hash.
AUTHENTICATE = (
    select(*_PARTNERS.c, *_KEYS.c)
    .join_from(_PARTNERS, _KEYS, _KEYS.c.partner_id == _PARTNERS.c.id)
    .where(_KEYS.c.key_hash == bindparam("digest"), _KEYS.c.revoked_at.is_(None))
)


def authenticate(session: Session, presented: str) -> tuple[Partner, ApiKey] | None:
    """The partner and key behind a presented API key, or None (unknown or revoked)."""
    digest = hash_key(presented)
    return _principal(session.execute(AUTHENTICATE, {"digest": digest}).first(), digest)


async def authenticate_async(reads: AsyncReads, presented: str) -> tuple[Partner, ApiKey] | None:
    """``authenticate`` from the event loop: one round trip, no session."""
    digest = hash_key(presented)
    return _principal(await reads.fetch_one(AUTHENTICATE, {"digest": digest}), digest)


def _principal(row: Sequence[Any] | None, digest: str) -> tuple[Partner, ApiKey] | None:
    if row is None:
        return None
    split = len(_PARTNERS.c)
    partner = _detached(Partner, _PARTNERS, row[:split])
    api_key = _detached(ApiKey, _KEYS, row[split:])
    if not same_hash(api_key.key_hash, digest):
        return None
    return partner, api_key


def _detached(model: type[_M], table: Table, values: Sequence[Any]) -> _M:
    """A loaded row as the detached object a closed session would have left."""
    entity = model(**{column.key: value for column, value in zip(table.c, values, strict=True)})
    make_transient_to_detached(entity)
    return entity


KEY_USE_EVERY = timedelta(minutes=1)


def key_use_is_stale(api_key: ApiKey, now: datetime) -> bool:
    """Whether this request should record the key's use (at most once a minute)."""
    return api_key.last_used_at is None or now - api_key.last_used_at >= KEY_USE_EVERY


def record_key_use(session: Session, key_id: int, now: datetime) -> None:
    """Note that the key was just used, unless another request did within the minute."""
    session.execute(
        update(ApiKey)
        .where(
            ApiKey.id == key_id,
            (ApiKey.last_used_at.is_(None)) | (ApiKey.last_used_at < now - KEY_USE_EVERY),
        )
        .values(last_used_at=now)
    )


def live_partners(session: Session) -> list[Partner]:
    """Every partner but the sandbox twins, in the order they were created."""
    return list(
        session.scalars(select(Partner).where(Partner.sandbox_of_id.is_(None)).order_by(Partner.id))
    )


def public_id_of(session: Session, partner_id: int) -> str:
    """The public id (``ptr_…``) of the partner with this row id, for another domain's views."""
    return session.get_one(Partner, partner_id).public_id
