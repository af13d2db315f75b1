"""The operator API is invisible without an operator key: 404 before routing, so a wrong
method (405) or a bad body (400/422) reveals nothing either. A bad operator key counts
against the client's address like a bad partner key (``deps.guessing_refusal``)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from codeshelf.api.deps import Services, count_failed_key, guessing_refusal
from codeshelf.api.middleware import send_problem
from codeshelf.kit.db import Database
from codeshelf.operators import service as operators


class HideAdminApi:
    def __init__(self, app: ASGIApp, prefix: str) -> None:
        self.app = app
        self.prefix = prefix

    @staticmethod
    def _is_operator(db: Database, token: str) -> bool:
        with db.read_session() as session:
            return operators.authenticate(session, token) is not None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] == "http" and (path == self.prefix or path.startswith(self.prefix + "/")):
            header = dict(scope.get("headers", [])).get(b"authorization", b"").decode("latin-1")
            scheme, _, token = header.partition(" ")
            token = token.strip()
            services: Services = scope["app"].state.services
            presented = (
                scheme.lower() == "bearer"
                and token.startswith(operators.KEY_PREFIX)
                and len(token) <= 200
            )
            refused = await guessing_refusal(services, scope) if presented else None
            if refused is not None:
                retry = [(b"retry-after", refused.headers["Retry-After"].encode())]
                await send_problem(send, scope, refused.slug, 429, refused.detail, retry)
                return
            allowed = presented and await run_in_threadpool(self._is_operator, services.db, token)
            if presented and not allowed:
                await count_failed_key(services, scope)
            if not allowed:
                detail = f"nothing at {scope.get('method')} {path}"
                await send_problem(send, scope, "not-found", 404, detail)
                return
        await self.app(scope, receive, send)
