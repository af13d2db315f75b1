"""The 10-endpoint cap holds when a partner creates endpoints in parallel (each create counts
under a lock of the partner's row; before, 17 of 25 parallel creates got through on
PostgreSQL)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from codeshelf.kit.settings import Settings
from codeshelf.webhooks.service import MAX_ENDPOINTS
from tests.fixtures.factories import Shop
from tests.fixtures.servers import LiveServer


@pytest.fixture
def settings(hook_settings: Settings) -> Settings:
    return hook_settings  # endpoints on loopback


def test_the_endpoint_cap_holds_under_parallel_creates(live_server: LiveServer, shop: Shop) -> None:
    def create(n: int) -> int:
        answer = httpx.post(
            f"{live_server.url}/api/v1/webhook-endpoints",
            json={"url": f"http://127.0.0.1:9/hook-{n}"},
            headers=shop.a.headers,
            timeout=60,
        )
        return answer.status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(create, range(25)))
    assert statuses.count(201) == MAX_ENDPOINTS, statuses
    assert set(statuses) == {201, 422}
    listed = httpx.get(f"{live_server.url}/api/v1/webhook-endpoints", headers=shop.a.headers)
    assert len(listed.json()["data"]) == MAX_ENDPOINTS
