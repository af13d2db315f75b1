"""Evidence files after a secret rotation: sealed again under the current key, a batch at a
time, while operators read them.

The file is replaced first (atomically), then its record's key id, in the caller's
transaction. A crash in between leaves a file under the current key whose record names the
previous one: readers try every configured key (``EvidenceStore.read``), and the next run
finds the file current and only corrects the record.
"""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from codeshelf.claims.evidence import EvidenceStore
from codeshelf.claims.models import ClaimEvidence
from codeshelf.kit.rotation import KeyCounts, Resealed, classify


def evidence_keys(session: Session, store: EvidenceStore) -> KeyCounts:
    """How many evidence files are under which key, as their records say."""
    rows = session.execute(
        select(ClaimEvidence.key_id, func.count()).group_by(ClaimEvidence.key_id)
    )
    return classify(store.vault, [(key_id, count) for key_id, count in rows])


def reseal_evidence(session: Session, store: EvidenceStore, *, after: int, limit: int) -> Resealed:
    """Seal again under the current key up to ``limit`` evidence files whose records (ids
    above ``after``) name a previous key. A missing file is skipped (and stays counted)."""
    vault = store.vault
    previous = sorted(vault.previous_key_ids)
    if not previous:
        return Resealed(0, 0, None)
    rows = session.execute(
        select(
            ClaimEvidence.id, ClaimEvidence.storage_key, ClaimEvidence.key_id, ClaimEvidence.sha256
        )
        .where(ClaimEvidence.id > after, ClaimEvidence.key_id.in_(previous))
        .order_by(ClaimEvidence.id)
        .limit(limit)
    ).all()
    resealed = skipped = 0
    for evidence_id, storage_key, key_id, sha256 in rows:
        if not store.reseal(storage_key, key_id, sha256):
            skipped += 1
            continue
        moved = session.execute(
            update(ClaimEvidence)
            .where(ClaimEvidence.id == evidence_id, ClaimEvidence.key_id == key_id)
            .values(key_id=vault.key_id)
            .execution_options(synchronize_session=False)
        )
        resealed += int(moved.rowcount)  # type: ignore[attr-defined]
    return Resealed(len(rows), resealed, int(rows[-1][0]) if rows else None, skipped)
