"""The client library against the real app under uvicorn on loopback (every test is live: a
fresh database with real commits, on SQLite and on PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from codeshelf_client import Codeshelf
from tests.fixtures.factories import Shop
from tests.fixtures.servers import LiveServer


@pytest.fixture
def shelf(live_server: LiveServer, shop: Shop) -> Iterator[Codeshelf]:
    """Partner A's client of the live server, with a short retry budget."""
    with Codeshelf(shop.a.key, base_url=live_server.url, max_retry_time=10) as client:
        yield client
