"""Per-key rate limits with the ``limits`` library, and the IETF RateLimit header fields.

Fixed one-minute windows: each API key may make its partner's quota of requests per window
(``CODESHELF_RATE_LIMIT_PER_MINUTE`` unless the partner has its own). Storage is in memory by
default, so with several server processes each counts on its own; point
``CODESHELF_RATE_LIMIT_STORAGE`` at Redis (``redis://host:6379``) to share the count.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItemPerMinute, storage
from limits.strategies import FixedWindowRateLimiter

WINDOW_SECONDS = 60


@dataclass(frozen=True)
class RateLimitDecision:
    allowed: bool
    quota: int
    remaining: int
    reset_seconds: int

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Policy": f'"default";q={self.quota};w={WINDOW_SECONDS}',
            "RateLimit": f'"default";r={self.remaining};t={self.reset_seconds}',
        }


class RateLimiter:
    def __init__(self, storage_uri: str) -> None:
        self._limiter = FixedWindowRateLimiter(storage.storage_from_string(storage_uri))
        self._items: dict[int, RateLimitItemPerMinute] = {}

    def hit(self, key: str, per_minute: int) -> RateLimitDecision:
        item = self._items.setdefault(per_minute, RateLimitItemPerMinute(per_minute))
        allowed = self._limiter.hit(item, key)
        stats = self._limiter.get_window_stats(item, key)
        reset = max(1, math.ceil(stats.reset_time - time.time()))
        return RateLimitDecision(allowed, per_minute, max(0, stats.remaining), reset)
