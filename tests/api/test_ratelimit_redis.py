"""With CODESHELF_RATE_LIMIT_STORAGE on Redis, several server processes share one count."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest
import redis

from codeshelf.kit.db import Database
from codeshelf.kit.settings import Settings
from tests.fixtures import factories
from tests.fixtures.servers import LiveServer

# Two real servers share one Redis: real commits and real processes.
pytestmark = pytest.mark.live


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    binary = os.environ.get("CODESHELF_REDIS_SERVER") or shutil.which("redis-server")
    if not binary:
        message = "redis-server not found (run `make test` to install it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    port = _free_port()
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}"
    client = redis.Redis.from_url(url)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield url
    finally:
        client.close()
        server.terminate()
        server.wait(timeout=20)


def test_two_servers_share_one_budget(redis_url: str, settings: Settings, db: Database) -> None:
    partner = factories.add_partner(db, "Shared Co", rate_limit=3)
    shared = settings.model_copy(update={"rate_limit_storage": redis_url})
    with ExitStack() as stack:
        servers = [stack.enter_context(LiveServer(shared)) for _ in range(2)]
        statuses = []
        for attempt in range(4):  # alternate between the two "workers"
            with httpx.Client(base_url=servers[attempt % 2].url) as http:
                statuses.append(http.get("/api/v1/balance", headers=partner.headers).status_code)
    assert statuses == [200, 200, 200, 429]
