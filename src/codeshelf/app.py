"""The FastAPI application: routers under /api/v1, problem details, middleware."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from codeshelf.api import problems
from codeshelf.api.deps import Services
from codeshelf.api.middleware import BodyLimitAndHeaders
from codeshelf.api.ratelimit import RateLimiter
from codeshelf.catalog.routes import router as catalog_router
from codeshelf.claims.admin_routes import router as claims_admin_router
from codeshelf.claims.evidence import EvidenceStore
from codeshelf.claims.routes import router as claims_router
from codeshelf.db import Database
from codeshelf.orders.routes import router as orders_router
from codeshelf.settings import Settings, get_settings
from codeshelf.stock.vault import CodeVault
from codeshelf.wallet.routes import router as wallet_router

API_PREFIX = "/api/v1"

DESCRIPTION = """
Wholesale API for digital gift codes. Authenticate with `Authorization: Bearer <api key>`.

* Money is `{"amount": "46.50", "currency": "USD"}`: an exact decimal string, never a float.
* `POST /orders` needs an `Idempotency-Key` (a UUID; at most 255 characters). Retrying with the
  same key and body returns the original response with `Idempotent-Replayed: true`; keys are kept
  for 24 hours.
* Errors are `application/problem+json` (RFC 9457) with a stable `type` per problem.
* Each API key may make 60 requests a minute unless agreed otherwise; every response carries
  `RateLimit-Policy` and `RateLimit` headers, and a 429 carries `Retry-After`.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    vault = CodeVault(settings.require_secret(), settings.previous_secrets())
    app = FastAPI(
        title="codeshelf",
        version="1.0.0",
        description=DESCRIPTION,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        redirect_slashes=False,  # /orders/x/ is not /orders/x: no redirect to guess at
    )
    app.state.services = Services(
        settings=settings,
        db=Database(settings.database_url),
        vault=vault,
        limiter=RateLimiter(settings.rate_limit_storage),
        evidence=EvidenceStore(settings.evidence_dir, vault),
    )
    api = APIRouter(prefix=API_PREFIX)
    for router in (
        catalog_router,
        wallet_router,
        orders_router,
        claims_router,
        claims_admin_router,
    ):
        api.include_router(router)
    app.include_router(api)
    problems.install(app)
    app.add_middleware(
        BodyLimitAndHeaders,
        max_body_bytes=settings.max_request_bytes,
        upload_path_prefix=f"{API_PREFIX}/claims",
        max_upload_bytes=settings.max_upload_bytes,
    )
    return app
