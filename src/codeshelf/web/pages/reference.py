"""The API reference, readable with no network: Swagger UI at ``/docs`` and ReDoc at
``/redoc``, both reading the partner OpenAPI document. Their scripts and styles come from the
pinned ``fastapi-offline`` package (``/docs/static/``), never a CDN; the pages carry no inline
script (``reference.js`` starts them), so they work under the same strict
Content-Security-Policy as the portal's pages, loosened only where these two libraries need it
(``DOCS_CSP``)."""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from codeshelf.web.http import templates

ASSETS = Path(fastapi_offline.__file__).parent / "static"  # swagger-ui, redoc.standalone.js
STATIC = "/docs/static"
# Both libraries set inline styles (ReDoc's styled-components adds <style> elements) and ReDoc
# runs its search in a worker made from a blob: URL. Scripts stay 'self' only.
DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def _page(template: str, openapi_url: str) -> HTMLResponse:
    html = templates.get_template(template).render(openapi_url=openapi_url, static=STATIC)
    return HTMLResponse(html)


def routes(openapi_url: str) -> APIRouter:
    """The two pages, reading the document at ``openapi_url``."""
    router = APIRouter()

    @router.get("/docs", response_class=HTMLResponse)
    def swagger_ui() -> HTMLResponse:
        return _page("swagger_ui.html", openapi_url)

    @router.get("/redoc", response_class=HTMLResponse)
    def redoc() -> HTMLResponse:
        return _page("redoc.html", openapi_url)

    return router
