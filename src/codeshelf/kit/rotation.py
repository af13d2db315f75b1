"""Secret rotation's shared vocabulary: how many stored secrets are under which key, and what
one batch of re-sealing did (``codeshelf secrets rotate``; each domain re-seals its own rows).

Every sealed value is stored with the id of the key that sealed it (codes: also fingerprinted
under that key's secret). A row is *current* under ``CODESHELF_SECRET_KEY``, *previous* under
one of ``CODESHELF_PREVIOUS_SECRET_KEYS`` (readable, to be sealed again), or *unknown* under a
key no longer configured (unreadable until that secret is configured again).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from codeshelf.kit.vault import Vault

BATCH_SIZE = 500  # rows per batch: each batch is one short transaction


@dataclass(frozen=True)
class KeyCounts:
    current: int = 0
    previous: int = 0
    unknown: int = 0

    @property
    def total(self) -> int:
        return self.current + self.previous + self.unknown

    def as_json(self) -> dict[str, int]:
        return {"current": self.current, "previous": self.previous, "unknown": self.unknown}


def classify(vault: Vault, counts: Iterable[tuple[str | None, int]]) -> KeyCounts:
    """(key id, how many) pairs, as current, previous or unknown (a None key id: no value)."""
    current = previous = unknown = 0
    for key_id, count in counts:
        if key_id is None:
            continue
        if key_id == vault.key_id:
            current += count
        elif key_id in vault.previous_key_ids:
            previous += count
        else:
            unknown += count
    return KeyCounts(current, previous, unknown)


@dataclass(frozen=True)
class Resealed:
    """One batch: the rows under a previous key it looked at (ids after ``after``, in id order),
    how many it sealed again under the current key (others changed meanwhile, or were skipped),
    and the last id looked at, where the next batch starts (None: nothing was left)."""

    seen: int
    resealed: int
    last_id: int | None
    skipped: int = 0  # could not be sealed again (an evidence file missing); left as they were


def reseal_value(
    vault: Vault, sealed: bytes | None, associated: bytes, key_id: str | None
) -> tuple[bytes | None, str | None]:
    """A sealed value (and its key id) under the current key; as it was unless it is under a
    previous one (nothing, already current, or under a key no longer configured: unreadable)."""
    if sealed is None or key_id is None or key_id not in vault.previous_key_ids:
        return sealed, key_id
    return vault.seal_bytes(vault.open_bytes(sealed, associated, key_id), associated), vault.key_id
