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
from codeshelf.web.http import (
    CONSOLE,
    HERE,
    ForbiddenError,
    SignInRequiredError,
    door_of,
    page,
    redirect,
)
from codeshelf.web.ops import applications as ops_applications
from codeshelf.web.ops import audit as ops_audit
from codeshelf.web.ops import claims as ops_claims
from codeshelf.web.ops import deposits as ops_deposits
from codeshelf.web.ops import imports as ops_imports
from codeshelf.web.ops import orders as ops_orders
from codeshelf.web.ops import overview as ops_overview
from codeshelf.web.ops import partners as ops_partners
from codeshelf.web.ops import reconciliation as ops_reconciliation
from codeshelf.web.ops import staff as ops_staff
from codeshelf.web.ops import stock as ops_stock
from codeshelf.web.ops import webhooks as ops_webhooks
from codeshelf.web.pages import (
    account,
    activity,
    apply,
    claims,
    developers,
    finance,
    orders,
    problems,
    reference,
    signin,
    team,
)
from codeshelf.web.security import OnlyFromNetworks, PageHeaders, page_headers

PREFIX = "/account"
# Pages, not problem documents.
PAGE_PREFIXES = (PREFIX, CONSOLE.prefix, apply.PREFIX, problems.PREFIX)
REFERENCE_PAGES = ("/docs", "/redoc")  # and their assets under /docs/static
CONSOLE_ROUTERS = (
    signin.routes(CONSOLE),
    ops_overview.router,
    ops_claims.router,
    ops_orders.router,
    ops_webhooks.router,
    ops_applications.router,
    ops_partners.router,
    ops_deposits.router,
    ops_reconciliation.router,
    ops_stock.router,
    ops_imports.router,
    ops_audit.router,
    ops_staff.router,
)
# The console's upload of a file of codes: its body is streamed to disk, not read whole.
STREAMED_PATHS = frozenset({ops_imports.PATH})
# The forms that carry claim screenshots (exact routes) may be as big as the API's multipart
# claims; their bodies reach them unread, after the session is checked.
UPLOAD_PATHS = claims.UPLOAD_PATHS
Handler = Callable[[Request, Exception], Awaitable[Response]]


def install(app: FastAPI) -> None:
    """Add the portal and the console to ``app`` (after the API's problem handlers)."""
    routers = (account, orders, claims, finance, developers, team, activity, apply, problems)
    for router in (*(module.router for module in routers), *CONSOLE_ROUTERS):
        app.include_router(router, include_in_schema=False)
    if app.openapi_url:
        app.include_router(reference.routes(app.openapi_url), include_in_schema=False)
        app.mount(reference.STATIC, StaticFiles(directory=reference.ASSETS), name="docs-static")
    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="portal-static")
    app.add_middleware(PageHeaders, prefixes=PAGE_PREFIXES)
    app.add_middleware(
        PageHeaders, prefixes=REFERENCE_PAGES, headers=page_headers(reference.DOCS_CSP)
    )
    app.add_middleware(OnlyFromNetworks, prefix=CONSOLE.prefix)
    api_handler = cast(Handler | None, app.exception_handlers.get(DomainError))

    async def domain_error(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith(PAGE_PREFIXES) or api_handler is None:
            assert isinstance(exc, DomainError)
            status = http_status(exc)
            title = "Not found" if status == 404 else "Not possible"
            return page(request, "message.html", status=status, title=title, message=exc.detail)
        return await api_handler(request, exc)

    async def sign_in(request: Request, exc: Exception) -> Response:
        return redirect(door_of(request).login)

    async def forbidden(request: Request, exc: Exception) -> Response:
        who = "a staff admin" if door_of(request).staff else "an owner or admin of your team"
        return page(
            request, "message.html", status=403, title="Not allowed",
            message=f"Your role does not allow this. Ask {who}.",
        )  # fmt: skip

    app.add_exception_handler(DomainError, domain_error)
    app.add_exception_handler(SignInRequiredError, sign_in)
    app.add_exception_handler(ForbiddenError, forbidden)
