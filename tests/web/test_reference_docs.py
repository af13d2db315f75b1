"""The API reference works offline: /docs (Swagger UI) and /redoc render the partner
operations from assets the server itself serves, under a CSP with script-src 'self', and no
request leaves loopback."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import ConsoleMessage, Page, Route, expect

from tests.fixtures.browser import Portal

LOOPBACK = {"127.0.0.1", "localhost", "[::1]"}
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # no database here


class Offline:
    """Every request the page makes, and the ones it tried off loopback (refused)."""

    def __init__(self, page: Page) -> None:
        self.seen: list[str] = []
        self.escaped: list[str] = []
        self.errors: list[str] = []
        page.route("**/*", self._route)
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _route(self, route: Route) -> None:
        url = route.request.url
        self.seen.append(url)
        if urlsplit(url).scheme in ("http", "https") and urlsplit(url).hostname not in LOOPBACK:
            self.escaped.append(url)
            route.abort()
            return
        route.continue_()

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)


def _open(portal: Portal, path: str) -> Offline:
    """``path`` opened with every request watched; checks the page's CSP and markup."""
    offline = Offline(portal.page)
    response = portal.page.goto(portal.url + path)
    assert response is not None and response.ok
    csp = response.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "unsafe-eval" not in csp
    assert "<script>" not in portal.page.content()  # no inline script
    return offline


def _stayed_home(offline: Offline) -> None:
    assert offline.escaped == []
    assert any("/docs/static/" in url for url in offline.seen)
    assert any(url.endswith("/api/v1/openapi.json") for url in offline.seen)
    refused = [error for error in offline.errors if "Content Security Policy" in error]
    # ReDoc's footer links its maker's logo from a CDN: the policy keeps it from loading.
    assert [error for error in refused if REDOC_LOGO not in error] == []


def test_swagger_ui_renders_the_operations_offline(portal: Portal) -> None:
    offline = _open(portal, "/docs")
    page = portal.page
    orders = page.locator(".opblock-post .opblock-summary-path", has_text="/api/v1/orders")
    expect(orders.first).to_be_visible(timeout=30_000)
    expect(page.locator(".opblock-summary-operation-id").first).to_be_visible()
    _stayed_home(offline)


def test_redoc_renders_the_operations_offline(portal: Portal) -> None:
    offline = _open(portal, "/redoc")
    page = portal.page
    expect(page.locator("#redoc h1").first).to_be_attached(timeout=30_000)  # ReDoc ran
    _stayed_home(offline)
    assert not page.get_by_text("Something went wrong").count()
    expect(page.get_by_text("/api/v1/orders").first).to_be_attached()


def test_the_reference_assets_are_the_packages(portal: Portal) -> None:
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"):
        response = httpx.get(f"{portal.url}/docs/static/{asset}")
        assert response.status_code == 200, asset
        assert len(response.content) > 100_000
