"""Encryption at rest (AES-256-GCM) and keyed fingerprints: codes, webhook secrets, evidence.

Keys are derived from ``CODESHELF_SECRET_KEY`` with HKDF. Each ciphertext row records the id of
the key that sealed it, so the secret can rotate: earlier secrets listed in
``CODESHELF_PREVIOUS_SECRET_KEYS`` still open their rows. Fingerprints (HMAC-SHA256 of the
canonical code) let imports find duplicates without ever comparing plaintext.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

NONCE_BYTES = 12


def _derive(secret: str, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"codeshelf", info=purpose).derive(
        secret.encode()
    )


def _key_id(encryption_key: bytes) -> str:
    return hashlib.sha256(b"codeshelf key id" + encryption_key).hexdigest()[:12]


class UnknownKeyError(LookupError):
    """A row was sealed with a key that is not configured any more."""


class Vault:
    def __init__(self, secret: str, previous_secrets: list[str] | None = None) -> None:
        current = _derive(secret, b"code-encryption v1")
        self.key_id = _key_id(current)
        self._ciphers = {self.key_id: AESGCM(current)}
        for old in previous_secrets or []:
            key = _derive(old, b"code-encryption v1")
            self._ciphers.setdefault(_key_id(key), AESGCM(key))
        self._fingerprint_key = _derive(secret, b"code-fingerprint v1")
        self._earlier_fingerprint_keys = [
            _derive(old, b"code-fingerprint v1") for old in previous_secrets or []
        ]
        self._current = self._ciphers[self.key_id]

    @property
    def previous_key_ids(self) -> frozenset[str]:
        """The ids of the earlier secrets' keys: rows under them want sealing again."""
        return frozenset(self._ciphers) - {self.key_id}

    def fingerprint(self, canonical_code: str) -> bytes:
        return hmac.digest(self._fingerprint_key, canonical_code.encode(), "sha256")

    @property
    def rotated(self) -> bool:
        """Whether earlier secrets are configured: stock may hold fingerprints made with them."""
        return bool(self._earlier_fingerprint_keys)

    def earlier_fingerprints(self, canonical_code: str) -> list[bytes]:
        """The code's fingerprints under earlier secrets: stock imported before a rotation."""
        message = canonical_code.encode()
        return [hmac.digest(key, message, "sha256") for key in self._earlier_fingerprint_keys]

    def seal(self, canonical_code: str, fingerprint: bytes) -> bytes:
        """Nonce + ciphertext; the fingerprint is bound as associated data so rows can't swap."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._current.encrypt(nonce, canonical_code.encode(), fingerprint)

    def open(self, sealed: bytes, fingerprint: bytes, key_id: str) -> str:
        return self.open_bytes(sealed, fingerprint, key_id).decode()

    def seal_bytes(self, data: bytes, associated: bytes) -> bytes:
        """Encrypt any bytes (an evidence file, say) bound to ``associated``."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._current.encrypt(nonce, data, associated)

    def open_bytes(self, sealed: bytes, associated: bytes, key_id: str) -> bytes:
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise UnknownKeyError(f"no configured secret matches key id {key_id}")
        nonce, ciphertext = sealed[:NONCE_BYTES], sealed[NONCE_BYTES:]
        return cipher.decrypt(nonce, ciphertext, associated)

    def open_bytes_any(self, sealed: bytes, associated: bytes, key_id: str) -> tuple[bytes, str]:
        """Open with the recorded key, else with any other configured key; returns the bytes and
        the id of the key that opened them.

        For what is sealed apart from its record (an evidence file): a rotation replaces the
        file before the record says so, and a reader in between finds it under the new key.
        """
        others = [other for other in self._ciphers if other != key_id]
        for candidate in [key_id, *others] if key_id in self._ciphers else others:
            try:
                return self.open_bytes(sealed, associated, candidate), candidate
            except InvalidTag:
                continue
        if key_id not in self._ciphers:
            raise UnknownKeyError(f"no configured secret matches key id {key_id}")
        raise InvalidTag
