"""Every route the app serves is accounted for (OWASP API9, improper inventory): an API route is
in the partner's or the operator's OpenAPI document, and anything else is under one of the few
reviewed prefixes of the pages, the reference and the health checks. A route added with
``include_in_schema=False`` under /api/v1, or at a new top-level path, fails here until it is
documented or reviewed."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi.routing import iter_route_contexts
from starlette.routing import BaseRoute

from codeshelf.api.app import create_app
from codeshelf.kit.db import Database
from codeshelf.kit.settings import Settings
from tests.fixtures import factories
from tests.fixtures.claims import issue_operator_key

API = "/api/v1"
# What is served beside the API, reviewed: the portal, the console, access requests, the problem
# pages, the API reference and its assets, the pages' static files, and the health checks.
REVIEWED_PAGES = ("/account", "/ops", "/apply", "/problems", "/docs", "/redoc", "/static")
HEALTH = {"/healthz", "/readyz"}
CONVERTER = re.compile(r"\{(\w+):\w+\}")
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
DOCUMENTS = {f"{API}/openapi.json", f"{API}/admin/openapi.json"}


def _served(app_routes: list[BaseRoute]) -> set[tuple[str, str]]:
    """(method, path) of every route, through the routers included in one another."""
    served: set[tuple[str, str]] = set()
    for route in iter_route_contexts(app_routes):
        for method in sorted(route.methods or {"MOUNT"}):
            served.add((method, CONVERTER.sub(r"{\1}", route.path)))  # {reference:path}
    return served


def _documented(document: dict[str, object]) -> set[tuple[str, str]]:
    paths = document["paths"]
    assert isinstance(paths, dict)
    return {
        (method.upper(), path)
        for path, item in paths.items()
        for method in item
        if method in METHODS  # a path item also holds parameters, a summary...
    }


def test_every_route_is_documented_or_reviewed(
    client: httpx.Client, db: Database, settings: Settings
) -> None:
    operator = issue_operator_key(db)
    documented = _documented(client.get(f"{API}/openapi.json").json())
    documented |= _documented(
        client.get(f"{API}/admin/openapi.json", headers=operator.headers).json()
    )
    served = _served(create_app(settings, db).routes)
    api = {(method, path) for method, path in served if path.startswith(API)}
    documents = {(method, path) for path in DOCUMENTS for method in ("GET", "HEAD")}
    undocumented = sorted(api - documented - documents)
    assert not undocumented, f"API routes in neither OpenAPI document: {undocumented}"
    assert documented <= api, f"documented, not served: {sorted(documented - api)}"
    elsewhere = sorted(
        (method, path)
        for method, path in served - api
        if path not in HEALTH and not path.startswith(REVIEWED_PAGES)
    )
    assert not elsewhere, f"routes outside the API and the reviewed prefixes: {elsewhere}"


@pytest.mark.parametrize("path", ["/inventory", "/orders/ord_nope", "/nowhere"])
def test_api_answers_are_never_cached_nor_sniffed(
    client: httpx.Client, shop: factories.Shop, path: str
) -> None:
    for headers in (shop.a.headers, {}):
        answer = client.get(API + path, headers=headers)
        assert answer.headers["x-content-type-options"] == "nosniff", (path, answer.status_code)
        assert answer.headers["cache-control"] == "no-store"
