"""The client library against the real app under uvicorn on loopback (every test is live: a
fresh database with real commits).

The client talks HTTP: what the server does on each database is held by the API's own tests,
which run on both. So the client's tests run against the server on PostgreSQL, what a deployment
runs (a module may still name its own ``backend``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from codeshelf_client import Codeshelf
from tests.fixtures.databases import run_only_on
from tests.fixtures.factories import Shop
from tests.fixtures.servers import LiveServer


@pytest.hookimpl(tryfirst=True)  # before the marks are read
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    run_only_on(metafunc, "postgresql")


@pytest.fixture
def shelf(live_server: LiveServer, shop: Shop) -> Iterator[Codeshelf]:
    """Partner A's client of the live server, with a short retry budget."""
    with Codeshelf(shop.a.key, base_url=live_server.url, max_retry_time=10) as client:
        yield client
