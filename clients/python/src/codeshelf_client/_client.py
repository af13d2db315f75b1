"""``Codeshelf`` and ``AsyncCodeshelf``: one API key, one connection pool, the resources."""

from __future__ import annotations

import os
from types import TracebackType

import httpx

from codeshelf_client import _async_resources as ar
from codeshelf_client import _resources as r
from codeshelf_client._http import AsyncSender, Sender, Settings

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_RETRY_TIME = 60.0


def _settings(
    api_key: str | None, base_url: str | None, timeout: float, max_retry_time: float
) -> Settings:
    key = (api_key or os.environ.get("CODESHELF_API_KEY") or "").strip()
    if not key:
        raise ValueError("give api_key or set CODESHELF_API_KEY (server-side code only)")
    if not (key.isascii() and key.isprintable()) or " " in key:
        # Caught here, not as a UnicodeEncodeError out of the first request's headers.
        raise ValueError("the API key is not one: paste the whole cs_live_… or cs_test_… key")
    url = base_url or os.environ.get("CODESHELF_BASE_URL") or DEFAULT_BASE_URL
    return Settings(key, url.rstrip("/"), timeout, max_retry_time)


class Codeshelf:
    """The partner API, blocking::

        with Codeshelf("cs_live_…", base_url="https://api.example") as shelf:
            order = shelf.orders.create(product_id="psn-us-50", quantity=2)

    ``timeout`` is httpx's (seconds): connecting, and each read or write of an attempt, may
    take that long. ``max_retry_time`` is the time in which attempts may start (a call ends
    within it plus one attempt). ``transport`` is an ``httpx`` transport, for tests or a proxy."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retry_time: float = DEFAULT_MAX_RETRY_TIME,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._sender = Sender(_settings(api_key, base_url, timeout, max_retry_time), transport)
        self.inventory = r.Inventory(self._sender)
        self.balance = r.Balances(self._sender)
        self.orders = r.Orders(self._sender)
        self.claims = r.Claims(self._sender)
        self.events = r.Events(self._sender)
        self.webhook_endpoints = r.WebhookEndpoints(self._sender)
        self.reconciliation = r.Reconciliations(self._sender)
        self.sandbox = r.Sandbox(self._sender)

    def close(self) -> None:
        self._sender.close()

    def __enter__(self) -> Codeshelf:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncCodeshelf:
    """The partner API for asyncio: ``async with AsyncCodeshelf(key) as shelf: …``."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retry_time: float = DEFAULT_MAX_RETRY_TIME,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        settings = _settings(api_key, base_url, timeout, max_retry_time)
        self._sender = AsyncSender(settings, transport)
        self.inventory = ar.Inventory(self._sender)
        self.balance = ar.Balances(self._sender)
        self.orders = ar.Orders(self._sender)
        self.claims = ar.Claims(self._sender)
        self.events = ar.Events(self._sender)
        self.webhook_endpoints = ar.WebhookEndpoints(self._sender)
        self.reconciliation = ar.Reconciliations(self._sender)
        self.sandbox = ar.Sandbox(self._sender)

    async def aclose(self) -> None:
        await self._sender.close()

    async def __aenter__(self) -> AsyncCodeshelf:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
