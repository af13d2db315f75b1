"""60 requests a minute per key by default; configurable per partner and globally."""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import httpx

from codeshelf.api.problems import QUOTA_EXCEEDED
from codeshelf.api.ratelimit import LazyMemoryStorage, RateLimiter
from codeshelf.kit.db import Database
from codeshelf.kit.settings import Settings
from tests.fixtures import factories
from tests.fixtures.claims import issue_operator_key
from tests.fixtures.factories import Shop
from tests.fixtures.servers import serve


def _remaining(response: httpx.Response) -> int:
    match = re.fullmatch(r'"default";r=(\d+);t=(\d+)', response.headers["ratelimit"])
    assert match, response.headers["ratelimit"]
    assert 1 <= int(match.group(2)) <= 60
    return int(match.group(1))


def test_a_partner_limit_is_enforced_with_headers(
    client: httpx.Client, db: Database, shop: Shop
) -> None:
    slow = factories.add_partner(db, "Slow Co", rate_limit=3)
    seen = []
    for _ in range(3):
        response = client.get("/api/v1/balance", headers=slow.headers)
        assert response.status_code == 200
        assert response.headers["ratelimit-policy"] == '"default";q=3;w=60'
        seen.append(_remaining(response))
    assert seen == [2, 1, 0]
    refused = client.get("/api/v1/orders", headers=slow.headers)
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["type"] == QUOTA_EXCEEDED
    retry_after = int(refused.headers["retry-after"])
    assert 1 <= retry_after <= 60
    assert retry_after >= int(refused.headers["ratelimit"].rsplit("t=", 1)[1])
    # another partner's key has its own budget
    assert client.get("/api/v1/balance", headers=shop.a.headers).status_code == 200


def test_errors_carry_rate_limit_headers_too(client: httpx.Client, shop: Shop) -> None:
    response = client.get("/api/v1/orders/ord_missing", headers=shop.a.headers)
    assert response.status_code == 404
    assert "ratelimit" in response.headers and "ratelimit-policy" in response.headers


def test_the_global_default_applies_without_a_partner_limit(
    settings: Settings, db: Database
) -> None:
    partner = factories.add_partner(db, "Default Co")
    limited = settings.model_copy(update={"rate_limit_per_minute": 2})
    with serve(limited, db) as http:
        codes = [http.get("/api/v1/balance", headers=partner.headers).status_code for _ in range(3)]
    assert codes == [200, 200, 429]


def test_the_in_memory_limiter_starts_no_thread_per_request(monkeypatch: Any) -> None:
    limiter = RateLimiter("memory://")
    limiter.hit("warm-up", 10)
    time.sleep(0.05)  # any timer started so far has run out: only later ones are counted
    started: list[threading.Thread] = []
    original = threading.Thread.start

    def counting(thread: threading.Thread) -> None:
        started.append(thread)
        original(thread)

    monkeypatch.setattr(threading.Thread, "start", counting)
    decisions = [limiter.hit(f"key-{n % 3}", 50) for n in range(300)]
    assert started == []
    assert [d.allowed for d in decisions].count(False) == 3 * (100 - 50)  # still enforced


def test_a_passed_window_starts_again_and_idle_keys_are_swept() -> None:
    memory = LazyMemoryStorage()
    assert memory.incr("a", expiry=0.05) == 1
    assert memory.incr("a", expiry=0.05) == 2
    time.sleep(0.06)  # the window passes (not a timing assertion: only its end matters)
    assert memory.incr("a", expiry=60) == 1
    memory.incr("idle", expiry=0.01)
    time.sleep(0.02)
    for _ in range(LazyMemoryStorage.SWEEP_EVERY):
        memory.incr("busy", expiry=60)
    assert "idle" not in memory.storage and "idle" not in memory.expirations
    assert memory.get("busy") == LazyMemoryStorage.SWEEP_EVERY


def test_a_longer_window_counts_on_its_own() -> None:
    """The public access-request form counts per hour, apart from any per-minute count."""
    limiter = RateLimiter("memory://")
    hourly = [limiter.hit_window("web-apply:1.2.3.4", 2, 3600) for _ in range(3)]
    assert [d.allowed for d in hourly] == [True, True, False]
    assert hourly[-1].reset_seconds > 60 and hourly[-1].window_seconds == 3600
    assert hourly[-1].headers()["RateLimit-Policy"] == '"default";q=2;w=3600'
    assert limiter.hit("web-apply:1.2.3.4", 2).allowed  # the same key, another window


def test_the_operator_api_is_rate_limited_per_operator_key(
    settings: Settings, db: Database, shop: Shop
) -> None:
    alice, bob = issue_operator_key(db, "alice"), issue_operator_key(db, "bob")
    limited = settings.model_copy(update={"operator_rate_limit_per_minute": 3})
    with serve(limited, db) as client:
        for _ in range(3):
            assert client.get("/api/v1/admin/claims", headers=alice.headers).status_code == 200
        refused = client.get("/api/v1/admin/partners", headers=alice.headers)
        assert refused.status_code == 429 and refused.headers["content-type"] == (
            "application/problem+json"
        )
        assert int(refused.headers["retry-after"]) >= 1
        assert client.get("/api/v1/admin/claims", headers=bob.headers).status_code == 200
        # A key that is not an operator's still finds nothing there, however often it asks.
        for _ in range(5):
            assert client.get("/api/v1/admin/claims", headers=shop.a.headers).status_code == 404
