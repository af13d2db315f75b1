"""Sending a request with retries that never buy twice (seed 003's rules).

* Every ``POST`` carries an ``Idempotency-Key`` (the caller's, or a new UUID), the same on every
  retry of that call: the server runs the work once per key and replays its first answer.
* Retried: connection failures and timeouts, ``429 rate-limited``, ``409 idempotency-key-in-use``
  and 5xx, with exponential backoff and full jitter, waiting at least ``Retry-After`` when the
  server sends one; no attempt starts after ``max_retry_time`` seconds (a ``Retry-After`` longer
  than what is left ends the retries at once).
* A request the server does not deduplicate (a ``POST`` other than ``/orders``: filing a claim,
  a sandbox deposit, rotating a secret) is retried only when it surely did not reach the server:
  the connection could not be made, or it was refused before any work (429, key in use).
* Every other problem raises at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import httpx
import tenacity

from codeshelf_client._errors import APIConnectionError, ProblemError, problem_from

T = TypeVar("T")
VERSION = "0.1.0"
API_PREFIX = "/api/v1"
# Connection failures where the request cannot have reached the server.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)

FileSpec = tuple[str, bytes, str]  # (filename, content, media type)


@dataclass(frozen=True)
class Call(Generic[T]):
    """One API call: what to send, and how to read its answer."""

    method: str
    path: str
    parse: Callable[[httpx.Response, str | None], T]
    params: Sequence[tuple[str, str]] = ()
    json: Any = None
    form: Mapping[str, str] | None = None
    files: Sequence[tuple[str, FileSpec]] = ()
    idempotency_key: str | None = None
    # The server deduplicates it (GET, PUT, DELETE, and POST /orders by its key): repeating it
    # after an unknown outcome is safe.
    replay_safe: bool = field(default=False)

    def key(self) -> str | None:
        if self.method != "POST":
            return None
        return self.idempotency_key or str(uuid.uuid4())


@dataclass(frozen=True)
class Settings:
    api_key: str
    base_url: str
    timeout: float
    max_retry_time: float


def is_retryable(call: Call[Any], exc: BaseException) -> bool:
    """The retry rule (module docstring)."""
    if isinstance(exc, ProblemError):
        return exc.retryable or (exc.status >= 500 and call.replay_safe)
    if isinstance(exc, NOT_SENT):
        return True
    return isinstance(exc, httpx.TransportError) and call.replay_safe


class _Wait(tenacity.wait.wait_base):
    """Exponential backoff with full jitter, or the server's ``Retry-After`` when longer."""

    def __init__(self) -> None:
        self._backoff = tenacity.wait_random_exponential(multiplier=0.1, max=5)

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        backoff = self._backoff(retry_state)
        failed = retry_state.outcome.exception() if retry_state.outcome else None
        asked = failed.retry_after if isinstance(failed, ProblemError) else None
        return max(backoff, asked) if asked is not None else backoff


def retry_options(call: Call[Any], settings: Settings) -> dict[str, Any]:
    return {
        "stop": tenacity.stop_before_delay(settings.max_retry_time),
        "wait": _Wait(),
        "retry": tenacity.retry_if_exception(lambda exc: is_retryable(call, exc)),
        "reraise": True,
    }


def request_headers(settings: Settings) -> dict[str, str]:
    """What every request carries (a POST adds its Idempotency-Key)."""
    return {
        "Authorization": f"Bearer {settings.api_key}",
        "User-Agent": f"codeshelf-client/{VERSION}",
        "Accept": "application/json, application/problem+json",
    }


def build(
    client: httpx.Client | httpx.AsyncClient, call: Call[Any], key: str | None
) -> httpx.Request:
    files = list(call.files) or None
    return client.build_request(
        call.method,
        API_PREFIX + call.path,
        params=list(call.params) or None,
        json=call.json if files is None else None,
        data=dict(call.form) if call.form is not None else None,
        files=files,
        headers={"Idempotency-Key": key} if key is not None else None,
    )


def checked(response: httpx.Response, key: str | None) -> httpx.Response:
    if response.status_code >= 400:
        raise problem_from(response, key)
    return response


def lost(call: Call[Any], key: str | None, exc: httpx.TransportError) -> APIConnectionError:
    outcome = " (the outcome is unknown: retry with the same key)" if call.method == "POST" else ""
    return APIConnectionError(
        f"{call.method} {call.path}: no answer ({type(exc).__name__}: {exc}){outcome}",
        method=call.method,
        url=call.path,
        idempotency_key=key,
    )


class Sender:
    """Sends calls on one ``httpx.Client``, retrying by the rule."""

    def __init__(self, settings: Settings, transport: httpx.BaseTransport | None) -> None:
        self.settings = settings
        self.http = httpx.Client(
            base_url=settings.base_url,
            timeout=settings.timeout,
            headers=request_headers(settings),
            transport=transport,
        )

    def send(self, call: Call[T]) -> T:
        key = call.key()
        retrying = tenacity.Retrying(**retry_options(call, self.settings))
        try:
            response: httpx.Response = retrying(self._once, call, key)
        except httpx.TransportError as exc:
            raise lost(call, key, exc) from exc
        return call.parse(response, key)

    def _once(self, call: Call[Any], key: str | None) -> httpx.Response:
        response = self.http.send(build(self.http, call, key))
        return checked(response, key)

    def close(self) -> None:
        self.http.close()


class AsyncSender:
    """Sends calls on one ``httpx.AsyncClient``, retrying by the rule."""

    def __init__(self, settings: Settings, transport: httpx.AsyncBaseTransport | None) -> None:
        self.settings = settings
        self.http = httpx.AsyncClient(
            base_url=settings.base_url,
            timeout=settings.timeout,
            headers=request_headers(settings),
            transport=transport,
        )

    async def send(self, call: Call[T]) -> T:
        key = call.key()
        retrying = tenacity.AsyncRetrying(**retry_options(call, self.settings))
        try:
            response: httpx.Response = await retrying(self._once, call, key)
        except httpx.TransportError as exc:
            raise lost(call, key, exc) from exc
        return call.parse(response, key)

    async def _once(self, call: Call[Any], key: str | None) -> httpx.Response:
        response = await self.http.send(build(self.http, call, key))
        return checked(response, key)

    async def close(self) -> None:
        await self.http.aclose()
