"""Mounting the portal on the app: its pages, its static files, its headers, and pages (not
problem documents) for what goes wrong under /account/; and the public access-request pages
under /apply."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import cast

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from codeshelf.kit.errors import DomainError, http_status
from codeshelf.web.http import HERE, ForbiddenError, SignInRequiredError, page, sign_in_redirect
from codeshelf.web.pages import (
    account,
    activity,
    apply,
    claims,
    developers,
    finance,
    orders,
    team,
)
from codeshelf.web.security import PageHeaders

PREFIX = "/account"
PAGE_PREFIXES = (PREFIX, apply.PREFIX)  # pages, not problem documents, with the page headers
# Forms that carry claim screenshots may be as big as the API's multipart claims.
UPLOAD_PREFIXES = (f"{PREFIX}/orders/", f"{PREFIX}/claims/")
Handler = Callable[[Request, Exception], Awaitable[Response]]


def install(app: FastAPI) -> None:
    """Add the portal to ``app`` (after the API's problem handlers are installed)."""
    routers = (account, orders, claims, finance, developers, team, activity, apply)
    for router in (module.router for module in routers):
        app.include_router(router, include_in_schema=False)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="portal-static")
    app.add_middleware(PageHeaders, prefixes=PAGE_PREFIXES)
    api_handler = cast(Handler | None, app.exception_handlers.get(DomainError))

    async def domain_error(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith(PAGE_PREFIXES) or api_handler is None:
            assert isinstance(exc, DomainError)
            status = http_status(exc)
            title = "Not found" if status == 404 else "Not possible"
            return page(request, "message.html", status=status, title=title, message=exc.detail)
        return await api_handler(request, exc)

    async def sign_in(request: Request, exc: Exception) -> Response:
        return sign_in_redirect(request)

    async def forbidden(request: Request, exc: Exception) -> Response:
        return page(
            request, "message.html", status=403, title="Not allowed",
            message="Your role does not allow this. Ask an owner or admin of your team.",
        )  # fmt: skip

    app.add_exception_handler(DomainError, domain_error)
    app.add_exception_handler(SignInRequiredError, sign_in)
    app.add_exception_handler(ForbiddenError, forbidden)
