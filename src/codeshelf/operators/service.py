"""The operator's API keys (``cs_op_…``): hashed like partner keys, and never usable as one."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from codeshelf.audit import service as audit
from codeshelf.kit.clock import utcnow
from codeshelf.kit.errors import InvalidInputError, NotFoundError
from codeshelf.kit.ids import public_id
from codeshelf.kit.tokens import hash_key, same_hash
from codeshelf.operators.models import OperatorKey

KEY_PREFIX = "cs_op_"
# The audit log's actor is "operator:<name>", at most 64 characters.
MAX_NAME = 64 - len("operator:")


class OperatorKeyNotFoundError(NotFoundError):
    slug = "operator-key-not-found"


@dataclass(frozen=True)
class IssuedOperatorKey:
    key: OperatorKey
    secret: str  # shown once


def create_key(session: Session, name: str, actor: str = audit.OPERATOR_CLI) -> IssuedOperatorKey:
    return add_key_with_secret(session, name, KEY_PREFIX + secrets.token_urlsafe(32), actor)


def add_key_with_secret(
    session: Session, name: str, secret: str, actor: str = audit.OPERATOR_CLI
) -> IssuedOperatorKey:
    """Store a key whose secret the caller made (the demo derives its key from the secret)."""
    name = check_name(name)
    key = OperatorKey(
        public_id=public_id("opk"), name=name, key_hash=hash_key(secret), prefix=secret[:10]
    )
    session.add(key)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="operator_key.create",
        api_key_public_id=key.public_id,
        details={"name": name},
    )
    return IssuedOperatorKey(key, secret)


def check_name(name: str) -> str:
    """An operator's name as the audit log records it, or InvalidInputError."""
    name = name.strip()
    if not name or len(name) > MAX_NAME or not name.isprintable():
        raise InvalidInputError(
            f"an operator name of 1 to {MAX_NAME} printable characters is required"
        )
    return name


def revoke_key(
    session: Session, key_public_id: str, actor: str = audit.OPERATOR_CLI
) -> OperatorKey:
    key = session.scalar(select(OperatorKey).where(OperatorKey.public_id == key_public_id))
    if key is None:
        raise OperatorKeyNotFoundError(f"no operator key {key_public_id}")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        audit.record(
            session, actor=actor, action="operator_key.revoke", api_key_public_id=key.public_id
        )
    return key


def list_keys(session: Session) -> list[OperatorKey]:
    return list(session.scalars(select(OperatorKey).order_by(OperatorKey.id)))


def authenticate(session: Session, presented: str) -> OperatorKey | None:
    if not presented.startswith(KEY_PREFIX):
        return None
    digest = hash_key(presented)
    key = session.scalar(
        select(OperatorKey).where(OperatorKey.key_hash == digest, OperatorKey.revoked_at.is_(None))
    )
    if key is None or not same_hash(key.key_hash, digest):
        return None
    return key


def actor_name(key: OperatorKey) -> str:
    return f"operator:{key.name}"
