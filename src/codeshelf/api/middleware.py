"""ASGI middleware: a cap on request bodies, and rate-limit headers on every response; and
requests that mean two things refused before any route reads them: a header that must come
once sent twice (Authorization, Idempotency-Key), a JSON object naming a key twice.

Uploads (claim screenshots) are not read here: their route checks the caller first and then
parses the form, which spools each file past 1 MiB to disk; this middleware only counts.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.requests import ClientDisconnect
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from codeshelf.api.problems import PROBLEM_JSON, problem_body
from codeshelf.kit.uploads import UploadTooLargeError

RATE_LIMIT_HEADERS = "ratelimit_headers"  # key in scope["state"], set by the auth dependency
ONCE_ONLY = (b"authorization", b"idempotency-key")  # a second one would be silently ignored


class _DuplicateKeyError(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKeyError(key)
        seen[key] = value
    return seen


def repeated_header(scope: Scope) -> str | None:
    """A header that must come once but came more often, if any."""
    names = [name.lower() for name, _ in scope.get("headers", [])]
    return next((name.decode() for name in ONCE_ONLY if names.count(name) > 1), None)


def duplicate_json_key(scope: Scope, body: bytes) -> str | None:
    """A key a JSON body's object names twice (json.loads would keep the last silently)."""
    media = dict(scope.get("headers", [])).get(b"content-type", b"").split(b";")[0].strip()
    if not body or not (media == b"application/json" or media.endswith(b"+json")):
        return None
    try:
        json.loads(body, object_pairs_hook=_no_duplicates)
    except _DuplicateKeyError as exc:
        return exc.key
    except (ValueError, RecursionError):
        return None  # not JSON, or nested past what a parser takes: the route says so
    return None


NO_STORE = (b"cache-control", b"no-store")
NOSNIFF = (b"x-content-type-options", b"nosniff")  # JSON is JSON: never sniffed as a page
CLOSE = (b"connection", b"close")


class _Passed:
    """A body passed on to the app as it arrives, counted: past ``limit`` the app's read fails
    (UploadTooLargeError: a 413), and ``done`` says whether the client sent all of it."""

    def __init__(self, receive: Receive, limit: int | None) -> None:
        self._receive = receive
        self._limit = limit
        self.size = 0
        self.done = False

    async def __call__(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request":
            self.size += len(message.get("body", b""))
            if self._limit is not None and self.size > self._limit:
                raise UploadTooLargeError(f"request bodies are limited to {self._limit} bytes")
            self.done = not message.get("more_body", False)
        return message


class BodyLimitAndHeaders:
    """Limits come from the app's settings (``app.state.services``), read per request.

    Bodies are read whole before the app sees them, up to ``max_request_bytes``, except:

    - a multipart POST to one of ``upload_paths`` (route templates such as
      ``/api/v1/claims/{claim_id}/evidence``; those exact routes, nothing else): passed on
      unread and counted, up to ``max_upload_bytes``, so that the route authenticates before a
      byte of it is read and its form parser spools the files to disk;
    - a POST to one of ``streamed_paths`` (stock imports): passed on unread, up to
      ``max_import_bytes``, which the route enforces as it streams the body to disk.

    An answer given before such a body was read whole (a 401, a 413) closes the connection:
    the rest of the body is never read.
    """

    def __init__(
        self,
        app: ASGIApp,
        upload_paths: tuple[str, ...] = (),
        streamed_paths: frozenset[str] = frozenset(),
    ) -> None:
        self.app = app
        self.upload_patterns: tuple[re.Pattern[str], ...] = tuple(
            compile_path(path)[0] for path in upload_paths
        )
        self.streamed_paths = streamed_paths

    def _streamed(self, scope: Scope) -> bool:
        return scope.get("method") == "POST" and scope.get("path") in self.streamed_paths

    def _upload(self, scope: Scope) -> bool:
        """A multipart POST to one of the exact upload routes."""
        if scope.get("method") != "POST":
            return False
        media = dict(scope.get("headers", [])).get(b"content-type", b"")
        path = str(scope.get("path", ""))
        return media.lower().startswith(b"multipart/form-data") and any(
            pattern.match(path) for pattern in self.upload_patterns
        )

    def _limit(self, scope: Scope) -> int:
        settings = scope["app"].state.services.settings
        if self._streamed(scope):
            return int(settings.max_import_bytes)
        if self._upload(scope):
            return int(max(settings.max_upload_bytes, settings.max_request_bytes))
        return int(settings.max_request_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        twice = repeated_header(scope)
        if twice is not None:
            detail = f"send one {twice} header, not several: which would count?"
            await send_problem(send, scope, "malformed-request", 400, detail)
            return
        limit = self._limit(scope)
        declared = dict(scope.get("headers", [])).get(b"content-length", b"0")
        too_long = not declared.isdigit() or int(declared) > limit
        if too_long:
            await self._too_large(scope, send, limit)
            return
        if self._streamed(scope) or self._upload(scope):
            # Passed on unread. A stock file's route bounds what it reads itself (the API's
            # streams to disk counting; the console's asks for a length); an upload is counted.
            await self._pass_on(scope, receive, send, None if self._streamed(scope) else limit)
            return
        try:
            body = await self._read_body(receive, limit)
        except ClientDisconnect:
            return  # the client left mid-body: nothing to do, nobody to answer
        if body is None:
            await self._too_large(scope, send, limit)
            return
        doubled = duplicate_json_key(scope, body)
        if doubled is not None:
            detail = f"the JSON body names {doubled!r} twice: send each key once"
            await send_problem(send, scope, "malformed-request", 400, detail)
            return

        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, self._with_headers(send, state))

    async def _pass_on(self, scope: Scope, receive: Receive, send: Send, limit: int | None) -> None:
        passed = _Passed(receive, limit)
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            await self.app(scope, passed, self._with_headers(sending, scope["state"], passed))
        except ClientDisconnect:
            if started:
                raise
            # the client left mid-body: nothing to do, nobody to answer

    @staticmethod
    def _with_headers(send: Send, state: dict[str, Any], passed: _Passed | None = None) -> Send:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                for name, value in state.get(RATE_LIMIT_HEADERS, {}).items():
                    headers.append((name.lower().encode(), value.encode()))
                if not any(name == b"cache-control" for name, _ in headers):
                    headers.append(NO_STORE)  # balances, orders and codes are never cached
                if not any(name == b"x-content-type-options" for name, _ in headers):
                    headers.append(NOSNIFF)
                if passed is not None and not passed.done:
                    headers.append(CLOSE)  # answered before the whole body came: never read it
                message = {**message, "headers": headers}
            await send(message)

        return send_with_headers

    async def _read_body(self, receive: Receive, limit: int) -> bytes | None:
        """The whole body, or None once it grows past the limit (the rest is not read)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnect  # never pass a partial body on as if it were whole
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def _too_large(self, scope: Scope, send: Send, limit: int) -> None:
        detail = f"request bodies are limited to {limit} bytes"
        # The rest of the body is never read: the connection cannot be reused.
        await send_problem(send, scope, "payload-too-large", 413, detail, [CLOSE])


async def send_problem(
    send: Send,
    scope: Scope,
    slug: str,
    status: int,
    detail: str,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """Answer with a problem straight from ASGI middleware, before the app is reached."""
    payload = json.dumps(problem_body(slug, status, detail, scope.get("path"))).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(payload)).encode()),
                NO_STORE,
                NOSNIFF,
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
