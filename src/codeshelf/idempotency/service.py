"""Running a request once per Idempotency-Key (the IETF draft "The Idempotency-Key HTTP Header
Field", and Stripe's practice); the HTTP side, reading the key from the request, is in
``api/idempotency.py``.

A key is claimed in its own short transaction (so a concurrent request with the same key sees it
and gets 409), the work runs in a second transaction, and the response is stored in that same
transaction: the order and its stored response commit together or not at all. A claim whose
request died is taken over once its lock expires; a late finisher whose claim was taken over
finds its lock token changed and rolls back, so a key never pays twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from codeshelf.idempotency.models import IdempotencyRecord, KeyState
from codeshelf.kit.clock import utcnow
from codeshelf.kit.db import Database, table_of
from codeshelf.kit.errors import ConflictError, DomainError, InvalidInputError
from codeshelf.kit.settings import Settings

MAX_KEY_LENGTH = 255
log = logging.getLogger("codeshelf.idempotency")


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: str
    replayed: bool


@dataclass(frozen=True)
class _Claim:
    record_id: int
    lock_token: str


class KeyReusedError(InvalidInputError):
    slug = "idempotency-key-reused"


class KeyInUseError(ConflictError):
    slug = "idempotency-key-in-use"
    retry_after_seconds = 1


def is_valid_key(key: str) -> bool:
    """1 to 255 visible ASCII characters (a UUID is recommended)."""
    return 1 <= len(key) <= MAX_KEY_LENGTH and all(0x21 <= ord(char) <= 0x7E for char in key)


def purge_expired(session: Session, now: datetime, limit: int = 1000) -> int:
    """Delete up to ``limit`` keys past their retention; returns how many (the worker runs it)."""
    expired = (
        select(IdempotencyRecord.id)
        .where(IdempotencyRecord.expires_at < now)
        .order_by(IdempotencyRecord.expires_at)
        .limit(limit)
    )
    result = session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id.in_(expired)))
    return int(result.rowcount)  # type: ignore[attr-defined]


def fingerprint(method: str, path: str, payload: dict[str, Any]) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


def _claim(
    db: Database, settings: Settings, partner_id: int, key: str, request_fingerprint: str
) -> _Claim | StoredResponse:
    now = utcnow()
    token = secrets.token_hex(16)
    locked_until = now + timedelta(seconds=settings.idempotency_lock_seconds)
    expires_at = now + timedelta(hours=settings.idempotency_retention_hours)
    fresh = {
        "partner_id": partner_id,
        "key": key,
        "request_fingerprint": request_fingerprint,
        "state": KeyState.PROCESSING,
        "lock_token": token,
        "locked_until": locked_until,
        "created_at": now,
        "expires_at": expires_at,
    }
    with db.session() as session:
        record_id = session.scalar(_CLAIM[session.get_bind().dialect.name], fresh)
        if record_id is not None:
            return _Claim(record_id, token)
        record = session.scalars(
            select(IdempotencyRecord)
            .where(IdempotencyRecord.partner_id == partner_id, IdempotencyRecord.key == key)
            .with_for_update()
        ).one_or_none()
        if record is None:  # released between our insert and our read: the holder just failed
            raise _in_use()
        if record.expires_at <= now:
            record.request_fingerprint = request_fingerprint
            record.state = KeyState.PROCESSING
            record.response_status = None
            record.response_body = None
            record.created_at = now
            record.expires_at = expires_at
        elif record.request_fingerprint != request_fingerprint:
            raise KeyReusedError(
                "this Idempotency-Key was already used for a different request; "
                "use a new key for a new request",
            )
        elif record.state == KeyState.COMPLETED:
            return StoredResponse(record.response_status or 500, record.response_body or "", True)
        elif record.locked_until > now:
            raise _in_use()
        record.lock_token = token
        record.locked_until = locked_until
        return _Claim(record.id, token)


def _in_use() -> KeyInUseError:
    return KeyInUseError(
        "a request with this Idempotency-Key is still being processed; retry shortly"
    )


def _claim_statement(insert: Callable[[Table], Any]) -> Any:
    table = table_of(IdempotencyRecord)
    return (
        insert(table)
        .on_conflict_do_nothing(index_elements=["partner_id", "key"])
        .returning(table.c.id)
    )


# Claims a key never seen before in one statement (no row back when the key exists). On
# PostgreSQL a concurrent insert of the same key waits for the other transaction, which commits
# at once (the claim is its own short transaction), then sees the row.
_CLAIM = {
    "postgresql": _claim_statement(postgresql.insert),
    "sqlite": _claim_statement(sqlite.insert),
}


_COMPLETE = (
    update(table_of(IdempotencyRecord))
    .where(
        IdempotencyRecord.id == bindparam("b_record_id"),
        IdempotencyRecord.lock_token == bindparam("b_lock_token"),
        IdempotencyRecord.state == KeyState.PROCESSING,
    )
    .values(
        state=KeyState.COMPLETED,
        response_status=bindparam("b_response_status"),
        response_body=bindparam("b_response_body"),
    )
)


def _complete(session: Session, claim: _Claim, status: int, body: str) -> None:
    result = session.execute(
        _COMPLETE,
        {
            "b_record_id": claim.record_id,
            "b_lock_token": claim.lock_token,
            "b_response_status": status,
            "b_response_body": body,
        },
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise _in_use()  # our lock expired and a retry took the key over: it wins


def _release(db: Database, claim: _Claim) -> None:
    with db.session() as session:
        session.execute(
            delete(IdempotencyRecord).where(
                IdempotencyRecord.id == claim.record_id,
                IdempotencyRecord.lock_token == claim.lock_token,
                IdempotencyRecord.state == KeyState.PROCESSING,
            )
        )


Work = Callable[[Session], tuple[int, str]]

# PostgreSQL's deadlock and serialization failures: the transaction was rolled back whole and
# may simply be run again.
RETRYABLE_SQLSTATES = {"40P01", "40001"}
ATTEMPTS = 3


def _work_and_complete(db: Database, claimed: _Claim, work: Work) -> tuple[int, str]:
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with db.session() as session:
                status, body = work(session)
                _complete(session, claimed, status, body)
            return status, body
        except OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) not in RETRYABLE_SQLSTATES:
                raise
            if attempt == ATTEMPTS:
                raise
            log.warning("retrying after %s (attempt %d)", type(exc.orig).__name__, attempt)
    raise AssertionError("unreachable")


def run(
    db: Database,
    settings: Settings,
    *,
    partner_id: int,
    key: str,
    request_fingerprint: str,
    work: Work,
    refusal: Callable[[DomainError], tuple[int, str]],
) -> StoredResponse:
    """Run ``work`` once per key; business refusals are stored and replayed like successes.

    ``refusal`` renders a business refusal as the (status, body) to store and replay.

    On a refusal the work's transaction is rolled back whole and the refusal is stored in a
    transaction of its own (if the process dies in between, the key is simply free again once
    its lock expires: nothing was done).
    """
    claimed = _claim(db, settings, partner_id, key, request_fingerprint)
    if isinstance(claimed, StoredResponse):
        return claimed
    try:
        try:
            status, body = _work_and_complete(db, claimed, work)
        except DomainError as exc:
            if not exc.business_refusal:
                raise
            status, body = refusal(exc)
            with db.session() as session:
                _complete(session, claimed, status, body)
    except BaseException:
        try:
            _release(db, claimed)
        except Exception:  # the original error matters more; the lock expires anyway
            log.exception("could not release idempotency key")
        raise
    return StoredResponse(status, body, False)
