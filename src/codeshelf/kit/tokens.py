"""Bearer tokens (API keys): stored only as SHA-256 hashes, compared in constant time.

A slow password hash buys nothing for 256-bit random keys, and a fast one keeps every request
cheap: the lookup is by hash, and the final comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def same_hash(stored: str, presented_hash: str) -> bool:
    return hmac.compare_digest(stored, presented_hash)
