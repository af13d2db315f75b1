"""Secret rotation across the domains: what is sealed, under which keys, and one batch of
sealing again, kind by kind. The door (``codeshelf secrets rotate``) owns the transactions:
one short one per batch, so the API and the worker go on reading and writing throughout.

Every stored value says which key sealed it (codes: and fingerprinted them), and a reader
opens it under any configured key: while a rotation runs, and after a crash halfway, every row
is readable under the current or a previous secret. Once no value is under a previous key,
``CODESHELF_PREVIOUS_SECRET_KEYS`` may be emptied.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from codeshelf.audit import service as audit
from codeshelf.claims.evidence import EvidenceStore
from codeshelf.claims.service import rotation as claims_rotation
from codeshelf.kit.rotation import KeyCounts, Resealed

__all__ = ["KeyCounts", "Kind", "Resealed", "Status", "kinds", "record_rotation", "status"]
from codeshelf.members.service import rotation as members_rotation
from codeshelf.stock.service import rotation as stock_rotation
from codeshelf.webhooks import rotation as webhooks_rotation


@dataclass(frozen=True)
class Kind:
    """One kind of sealed value: how to count it by key, and to seal a batch of it again."""

    name: str
    keys: Callable[[Session], KeyCounts]
    reseal: Callable[[Session, int, int], Resealed]  # (session, after id, limit)
    skipped_because: str = "unreadable"  # why a batch may leave one as it was


def kinds(store: EvidenceStore) -> list[Kind]:
    """Everything the database and the evidence directory hold sealed, in the order rotated."""
    vault = store.vault
    return [
        Kind(
            "codes",
            lambda s: stock_rotation.code_keys(s, vault),
            lambda s, after, limit: stock_rotation.reseal_codes(s, vault, after=after, limit=limit),
            "the same code is in stock twice, imported under two secrets",
        ),
        Kind(
            "webhook secrets",
            lambda s: webhooks_rotation.secret_keys(s, vault),
            lambda s, after, limit: webhooks_rotation.reseal_secrets(
                s, vault, after=after, limit=limit
            ),
        ),
        Kind(
            "member TOTP secrets",
            lambda s: members_rotation.member_keys(s, vault),
            lambda s, after, limit: members_rotation.reseal_members(
                s, vault, after=after, limit=limit
            ),
        ),
        Kind(
            "invitation TOTP secrets",
            lambda s: members_rotation.invitation_keys(s, vault),
            lambda s, after, limit: members_rotation.reseal_invitations(
                s, vault, after=after, limit=limit
            ),
        ),
        Kind(
            "evidence files",
            lambda s: claims_rotation.evidence_keys(s, store),
            lambda s, after, limit: claims_rotation.reseal_evidence(
                s, store, after=after, limit=limit
            ),
            "the file is missing from the evidence directory",
        ),
    ]


@dataclass(frozen=True)
class Status:
    key_id: str  # the current key's id
    counts: dict[str, KeyCounts]  # by kind

    @property
    def previous(self) -> int:
        return sum(counts.previous for counts in self.counts.values())

    @property
    def unknown(self) -> int:
        return sum(counts.unknown for counts in self.counts.values())

    @property
    def previous_keys_needed(self) -> bool:
        """Whether some value is still under a previous key (then keep them configured)."""
        return self.previous > 0

    def as_json(self) -> dict[str, object]:
        return {
            "key_id": self.key_id,
            "kinds": {name: counts.as_json() for name, counts in self.counts.items()},
            "previous": self.previous,
            "unknown": self.unknown,
            "previous_keys_needed": self.previous_keys_needed,
        }


def status(session: Session, store: EvidenceStore) -> Status:
    """How many values of each kind are under the current key, a previous one, or neither."""
    return Status(store.vault.key_id, {kind.name: kind.keys(session) for kind in kinds(store)})


def record_rotation(
    session: Session, store: EvidenceStore, resealed: dict[str, int], actor: str
) -> None:
    """The audit entry of a finished rotation run: how many values it sealed again, by kind."""
    audit.record(
        session,
        actor=actor,
        action="secrets.rotate",
        subject=store.vault.key_id,
        count=sum(resealed.values()),
        details={"resealed": resealed},
    )
