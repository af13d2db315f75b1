"""ASGI middleware: a cap on request bodies, and rate-limit headers on every response; and
requests that mean two things refused before any route reads them: a header that must come
once sent twice (Authorization, Idempotency-Key), a JSON object naming a key twice."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from codeshelf.api.problems import PROBLEM_JSON, problem_body

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


class BodyLimitAndHeaders:
    """Limits come from the app's settings (``app.state.services``), read per request.

    Bodies are read whole before the app sees them, up to the limit, except a POST to one of
    ``streamed_paths`` (stock imports): its body, up to ``max_import_bytes``, is passed on as
    it arrives, and the route streams it to disk and enforces that limit as it reads.
    """

    def __init__(
        self,
        app: ASGIApp,
        upload_path_prefixes: tuple[str, ...] = (),
        streamed_paths: frozenset[str] = frozenset(),
    ) -> None:
        self.app = app
        # Multipart uploads (claim screenshots) under these prefixes may be bigger.
        self.upload_path_prefixes = upload_path_prefixes
        self.streamed_paths = streamed_paths

    def _streamed(self, scope: Scope) -> bool:
        return scope.get("method") == "POST" and scope.get("path") in self.streamed_paths

    def _limit(self, scope: Scope) -> int:
        settings = scope["app"].state.services.settings
        if self._streamed(scope):
            return int(settings.max_import_bytes)
        headers = dict(scope.get("headers", []))
        is_upload = headers.get(b"content-type", b"").startswith(b"multipart/form-data")
        if (
            is_upload
            and self.upload_path_prefixes
            and str(scope.get("path", "")).startswith(self.upload_path_prefixes)
        ):
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
        if self._streamed(scope) and not too_long:
            # Passed on unread: the route must bound what it reads (a chunked body declares no
            # length): the API's streams to disk counting; the console's asks for a length.
            await self.app(scope, receive, self._with_headers(send, state))
            return
        try:
            body = None if too_long else await self._read_body(receive, limit)
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

    @staticmethod
    def _with_headers(send: Send, state: dict[str, Any]) -> Send:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                for name, value in state.get(RATE_LIMIT_HEADERS, {}).items():
                    headers.append((name.lower().encode(), value.encode()))
                if not any(name == b"cache-control" for name, _ in headers):
                    headers.append(NO_STORE)  # balances, orders and codes are never cached
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
        await send_problem(
            send, scope, "payload-too-large", 413, detail, [(b"connection", b"close")]
        )


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
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
