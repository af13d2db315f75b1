"""Per-key rate limits with the ``limits`` library, and the IETF RateLimit header fields.

Fixed one-minute windows: each API key may make its partner's quota of requests per window
(``CODESHELF_RATE_LIMIT_PER_MINUTE`` unless the partner has its own). Storage is in memory by
default, so with several server processes each counts on its own; point
``CODESHELF_RATE_LIMIT_STORAGE`` at Redis (``redis://host:6379``) to share the count.

Bad keys are counted per client address as well (``CODESHELF_AUTH_FAILURES_PER_MINUTE``):
``refusal_for_guessing`` and ``count_failed_key``, called by every door that checks a key.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, RateLimitItemPerMinute, RateLimitItemPerSecond, storage
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter
from starlette.concurrency import run_in_threadpool

from codeshelf.kit.settings import RATE_LIMITS_IN_MEMORY

WINDOW_SECONDS = 60
FAILED_AUTH = "failed-auth:"  # the count of bad keys per client address (not a key's id)


@dataclass(frozen=True)
class RateLimitDecision:
    allowed: bool
    quota: int
    remaining: int
    reset_seconds: int
    window_seconds: int = WINDOW_SECONDS

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Policy": f'"default";q={self.quota};w={self.window_seconds}',
            "RateLimit": f'"default";r={self.remaining};t={self.reset_seconds}',
        }


class LazyMemoryStorage(MemoryStorage):
    """``limits``' memory storage without its sweeper thread: that one starts a new
    ``threading.Timer`` on nearly every hit (about 27 threads a second under load). A window
    that has passed is dropped when its key is next read, as ``get`` already does, and every
    ``SWEEP_EVERY`` hits the keys of passed windows are dropped so idle keys free their memory.
    """

    SWEEP_EVERY = 10_000

    def __init__(self) -> None:
        super().__init__()
        self._hits = 0

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        self.get(key)  # a passed window starts again from zero
        with self.locks[key]:
            self.storage[key] += amount
            if self.storage[key] == amount:
                self.expirations[key] = time.time() + expiry
        self._hits += 1
        if self._hits % self.SWEEP_EVERY == 0:
            self._sweep()
        return self.storage.get(key, 0)

    def _sweep(self) -> None:
        now = time.time()
        for key, expires in list(self.expirations.items()):
            if expires <= now:
                self.clear(key)


def _storage(uri: str) -> storage.StorageTypes:
    return LazyMemoryStorage() if uri == RATE_LIMITS_IN_MEMORY else storage.storage_from_string(uri)


class RateLimiter:
    def __init__(self, storage_uri: str) -> None:
        counts = _storage(storage_uri)
        self._limiter = FixedWindowRateLimiter(counts)
        self._in_memory = isinstance(counts, LazyMemoryStorage)
        self._items: dict[int, RateLimitItemPerMinute] = {}
        self._windows: dict[tuple[int, int], RateLimitItemPerSecond] = {}

    async def hit_async(self, key: str, per_minute: int) -> RateLimitDecision:
        """``hit`` from the event loop: in memory at once, a network store from a thread."""
        if self._in_memory:
            return self.hit(key, per_minute)
        return await run_in_threadpool(self.hit, key, per_minute)

    async def refusal_for_guessing(self, address: str, per_minute: int) -> RateLimitDecision | None:
        """The rule against guessing keys: an address that presented ``per_minute`` bad keys in
        this minute is refused (the decision returned: 429 with its Retry-After) whatever key
        it sends now, good or bad, until the minute is over; None: it may try."""
        if self._in_memory:
            return self._refusal(address, per_minute)
        return await run_in_threadpool(self._refusal, address, per_minute)

    async def count_failed_key(self, address: str, per_minute: int) -> None:
        """One more bad key presented from ``address`` this minute."""
        await self.hit_async(FAILED_AUTH + address, per_minute)

    def _refusal(self, address: str, per_minute: int) -> RateLimitDecision | None:
        item = self._items.setdefault(per_minute, RateLimitItemPerMinute(per_minute))
        key = FAILED_AUTH + address
        if self._limiter.test(item, key):
            return None
        stats = self._limiter.get_window_stats(item, key)
        reset = max(1, math.ceil(stats.reset_time - time.time()))
        return RateLimitDecision(False, per_minute, 0, reset)

    def hit(self, key: str, per_minute: int) -> RateLimitDecision:
        item = self._items.setdefault(per_minute, RateLimitItemPerMinute(per_minute))
        return self._decide(item, key, per_minute, WINDOW_SECONDS)

    def hit_window(self, key: str, quota: int, seconds: int) -> RateLimitDecision:
        """``hit`` with a window of ``seconds`` (the public access-request form: an hour)."""
        item = self._windows.setdefault((quota, seconds), RateLimitItemPerSecond(quota, seconds))
        return self._decide(item, key, quota, seconds)

    def _decide(self, item: RateLimitItem, key: str, quota: int, seconds: int) -> RateLimitDecision:
        allowed = self._limiter.hit(item, key)
        stats = self._limiter.get_window_stats(item, key)
        reset = max(1, math.ceil(stats.reset_time - time.time()))
        return RateLimitDecision(allowed, quota, max(0, stats.remaining), reset, seconds)
