"""Codes after a secret rotation: sealed again and fingerprinted again under the current secret,
a batch at a time, while orders and imports go on.

A code's ``key_id`` names the secret of both its ciphertext and its fingerprint (an import
seals and fingerprints under one secret), so one UPDATE moves all three at once: every reader
sees the old triple or the new one, and opens either while both secrets are configured. The
UPDATE names the key id it read, so a second rotation running beside this one cannot seal a
code twice. Imports meanwhile find duplicates under every configured secret's fingerprint
(``imports._stocked_under_earlier_secrets``) and the unique index does the rest: a code is a
duplicate whichever fingerprint its stored twin carries at that moment.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from codeshelf.kit.db import table_of
from codeshelf.kit.rotation import KeyCounts, Resealed, classify
from codeshelf.kit.vault import Vault
from codeshelf.stock.models import Code


def code_keys(session: Session, vault: Vault) -> KeyCounts:
    """How many codes are under the current key, a previous one, or an unknown one."""
    rows = session.execute(select(Code.key_id, func.count()).group_by(Code.key_id))
    return classify(vault, [(key_id, count) for key_id, count in rows])


def reseal_codes(session: Session, vault: Vault, *, after: int, limit: int) -> Resealed:
    """Seal and fingerprint again under the current secret up to ``limit`` codes under a
    previous one, the first with ids above ``after``; in the caller's transaction."""
    previous = sorted(vault.previous_key_ids)
    if not previous:
        return Resealed(0, 0, None)
    rows = session.execute(
        select(Code.id, Code.sealed, Code.fingerprint, Code.key_id)
        .where(Code.id > after, Code.key_id.in_(previous))
        .order_by(Code.id)
        .limit(limit)
    ).all()
    if not rows:
        return Resealed(0, 0, None)
    changes: list[dict[str, Any]] = []
    for code_id, sealed, fingerprint, key_id in rows:
        canonical = vault.open(sealed, fingerprint, key_id)
        new_fingerprint = vault.fingerprint(canonical)
        changes.append(
            {
                "code_id": code_id,
                "old_key_id": key_id,
                "new_fingerprint": new_fingerprint,
                "new_sealed": vault.seal(canonical, new_fingerprint),
            }
        )
    try:
        with session.begin_nested():
            resealed = _update(session, vault, changes)
    except IntegrityError:
        return _one_by_one(session, vault, changes, int(rows[-1][0]))
    return Resealed(len(rows), resealed, int(rows[-1][0]))


def _update(session: Session, vault: Vault, changes: list[dict[str, Any]]) -> int:
    codes = table_of(Code)
    # In id order, like every pick: a rotation and an order lock codes in the same order.
    result = session.connection().execute(
        update(codes)
        .where(codes.c.id == bindparam("code_id"), codes.c.key_id == bindparam("old_key_id"))
        .values(
            fingerprint=bindparam("new_fingerprint"),
            sealed=bindparam("new_sealed"),
            key_id=vault.key_id,
        ),
        changes,
    )
    return int(result.rowcount)


def _one_by_one(
    session: Session, vault: Vault, changes: list[dict[str, Any]], last_id: int
) -> Resealed:
    """A batch holding a code whose new fingerprint another code already has: the same code
    stored twice, under two secrets (imported by a process that knew only one of them). Such
    a code is skipped (left as it was, and counted); the others are sealed again."""
    resealed = skipped = 0
    for change in changes:
        try:
            with session.begin_nested():
                resealed += _update(session, vault, [change])
        except IntegrityError:
            skipped += 1
    return Resealed(len(changes), resealed, last_id, skipped)
