"""The FastAPI application: routers under /api/v1, problem details, middleware."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, FastAPI

from codeshelf.api import contract, health, problems
from codeshelf.api.admin_gate import HideAdminApi
from codeshelf.api.admin_stock import IMPORTS_PATH
from codeshelf.api.admin_stock import router as stock_admin_router
from codeshelf.api.deps import Services
from codeshelf.api.middleware import BodyLimitAndHeaders
from codeshelf.api.observe import ObserveRequests
from codeshelf.api.ratelimit import RateLimiter
from codeshelf.applications.admin_routes import router as applications_admin_router
from codeshelf.catalog.admin_routes import router as catalog_admin_router
from codeshelf.claims.admin_routes import router as claims_admin_router
from codeshelf.claims.evidence import EvidenceStore
from codeshelf.claims.routes import BODY_MODELS as CLAIM_BODY_MODELS
from codeshelf.claims.routes import UPLOAD_PATHS as CLAIM_UPLOAD_PATHS
from codeshelf.claims.routes import router as claims_router
from codeshelf.dossier.admin_routes import router as partners_admin_router
from codeshelf.kit.db import Database
from codeshelf.kit.settings import Settings, get_settings
from codeshelf.kit.vault import Vault
from codeshelf.orders.admin_routes import router as orders_admin_router
from codeshelf.orders.routes import router as orders_router
from codeshelf.reconciliation.admin_routes import router as reconciliation_admin_router
from codeshelf.reconciliation.routes import router as reconciliation_router
from codeshelf.sandbox.routes import router as sandbox_router
from codeshelf.stock.routes import router as inventory_router
from codeshelf.wallet.admin_routes import router as wallet_admin_router
from codeshelf.wallet.routes import router as wallet_router
from codeshelf.web import app as web
from codeshelf.webhooks.routes import router as webhooks_router

API_PREFIX = "/api/v1"
ADMIN_PREFIX = f"{API_PREFIX}/admin"

DESCRIPTION = """
Wholesale API for digital gift codes. Authenticate with `Authorization: Bearer <api key>`.

* Money is `{"amount": "46.50", "currency": "USD"}`: an exact decimal string, never a float.
* `POST /orders` needs an `Idempotency-Key` (a UUID; at most 255 characters). Retrying with the
  same key and body returns the original response with `Idempotent-Replayed: true`; keys are kept
  for 24 hours.
* Errors are `application/problem+json` (RFC 9457) with a stable `type` per problem; each
  type's page, at `/problems/<slug>`, says what it means and what to do (all: `/problems/`).
* Each API key may make 60 requests a minute unless agreed otherwise; every response carries
  `RateLimit-Policy` and `RateLimit` headers, and a 429 carries `Retry-After`.
"""


def services_for(settings: Settings, db: Database | None = None) -> Services:
    """What the app's requests use: ``db`` (default: a new one for ``settings.database_url``,
    the caller's to dispose of when given), the vault, the rate limiter, the evidence store.

    Everything a request needs is read from ``app.state.services``, so an app can be pointed
    at other services (the test suite points one app at each test's database)."""
    vault = Vault(settings.require_secret(), settings.previous_secrets())
    return Services(
        settings=settings,
        db=db or Database(settings.database_url),
        vault=vault,
        limiter=RateLimiter(settings.rate_limit_storage),
        evidence=EvidenceStore(settings.evidence_dir, vault),
    )


def create_app(settings: Settings | None = None, db: Database | None = None) -> FastAPI:
    """The application, with ``services_for(settings, db)``."""
    settings = settings or get_settings()
    app = FastAPI(
        title="codeshelf",
        version="1.0.0",
        description=DESCRIPTION,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,  # /docs and /redoc: the web door's, with assets served from the package
        redoc_url=None,
        redirect_slashes=False,  # /orders/x/ is not /orders/x: no redirect to guess at
    )
    app.state.services = services_for(settings, db)
    api = APIRouter(prefix=API_PREFIX)
    for router in (
        inventory_router,
        wallet_router,
        orders_router,
        claims_router,
        webhooks_router,
        reconciliation_router,
        sandbox_router,
        claims_admin_router,
        orders_admin_router,
        applications_admin_router,
        wallet_admin_router,
        partners_admin_router,
        reconciliation_admin_router,
        catalog_admin_router,
        stock_admin_router,
    ):
        api.include_router(router)
    app.include_router(api)
    app.include_router(health.router)  # /healthz, /readyz: kept out of the OpenAPI documents
    _split_openapi(app)
    problems.install(app)
    web.install(app)
    app.add_middleware(
        BodyLimitAndHeaders,
        # Claim screenshots: these exact routes take multipart bodies up to
        # CODESHELF_MAX_UPLOAD_BYTES, passed on unread (the caller is checked first).
        upload_paths=(*(API_PREFIX + path for path in CLAIM_UPLOAD_PATHS), *web.UPLOAD_PATHS),
        # Stock files: streamed to disk by their route, up to CODESHELF_MAX_IMPORT_BYTES.
        streamed_paths=frozenset({f"{ADMIN_PREFIX}/stock{IMPORTS_PATH}", *web.STREAMED_PATHS}),
    )
    # Without an operator key the admin API is not there at all.
    app.add_middleware(HideAdminApi, prefix=ADMIN_PREFIX)
    # Outside that: every request gets its id, its log line and its metrics.
    app.add_middleware(ObserveRequests)
    return app


def _split_openapi(app: FastAPI) -> None:
    """Partners' OpenAPI document leaves the operator API out; operators get their own."""
    cache: dict[str, dict[str, Any]] = {}

    def full() -> dict[str, Any]:
        if "full" not in cache:
            cache["full"] = contract.build(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
                prefix=API_PREFIX,
                extra_models=CLAIM_BODY_MODELS,
            )
        return cache["full"]

    def partner_schema() -> dict[str, Any]:
        if "partner" not in cache:
            cache["partner"] = _only_paths(full(), lambda path: not path.startswith(ADMIN_PREFIX))
        return cache["partner"]

    def operator_schema() -> dict[str, Any]:
        if "operator" not in cache:
            schema = _only_paths(full(), lambda path: path.startswith(ADMIN_PREFIX))
            cache["operator"] = {
                **schema,
                "info": {**schema["info"], "title": "codeshelf operator API"},
            }
        return cache["operator"]

    app.openapi = partner_schema  # type: ignore[method-assign]
    app.state.operator_openapi = operator_schema


def _only_paths(schema: dict[str, Any], keep: Callable[[str], bool]) -> dict[str, Any]:
    """The document with only the kept paths, and only the component schemas they use (the
    webhooks, which only partners receive, go with the partner paths)."""
    paths = {path: item for path, item in schema["paths"].items() if keep(path)}
    webhooks = schema.get("webhooks", {}) if keep("/") else {}
    components = schema.get("components", {}).get("schemas", {})
    used: set[str] = set()
    pending = _refs(paths) | _refs(webhooks)
    while pending:
        name = pending.pop()
        if name not in used and name in components:
            used.add(name)
            pending |= _refs(components[name])
    trimmed = {name: components[name] for name in sorted(used)}
    security = {
        name: scheme
        for name, scheme in schema["components"]["securitySchemes"].items()
        if name in _security_names(paths)
    }
    document = {**schema, "paths": paths, "webhooks": webhooks}
    document["components"] = {
        **schema["components"],
        "schemas": trimmed,
        "securitySchemes": security,
    }
    if not webhooks:
        del document["webhooks"]
    return document


def _security_names(paths: dict[str, Any]) -> set[str]:
    return {
        name
        for item in paths.values()
        for operation in item.values()
        for requirement in operation.get("security", [])
        for name in requirement
    }


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = set()
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                found.add(value.rsplit("/", 1)[-1])
            else:
                found |= _refs(value)
        return found
    if isinstance(node, list):
        return set().union(*(_refs(item) for item in node)) if node else set()
    return set()
