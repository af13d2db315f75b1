"""Request dependencies: the app's services, and the authenticated partner."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Header, Request
from starlette.concurrency import run_in_threadpool
from starlette.types import Scope

from codeshelf.api.middleware import RATE_LIMIT_HEADERS
from codeshelf.api.observe import PARTNER
from codeshelf.api.problems import HTTPProblemError
from codeshelf.api.ratelimit import RateLimiter
from codeshelf.claims.evidence import EvidenceStore
from codeshelf.kit.clock import utcnow
from codeshelf.kit.db import Database
from codeshelf.kit.settings import Settings
from codeshelf.kit.vault import Vault
from codeshelf.operators import service as operators
from codeshelf.operators.models import OperatorKey
from codeshelf.partners import service as partners
from codeshelf.partners.models import ApiKey, Partner


@dataclass(frozen=True)
class Services:
    settings: Settings
    db: Database
    vault: Vault
    limiter: RateLimiter
    evidence: EvidenceStore


@dataclass(frozen=True)
class Principal:
    partner: Partner
    api_key: ApiKey


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def _unauthorized(detail: str, error: str | None = None) -> HTTPProblemError:
    challenge = 'Bearer realm="codeshelf"'
    if error:
        challenge += f', error="{error}"'
    return HTTPProblemError("unauthorized", detail, headers={"WWW-Authenticate": challenge})


def client_address(scope: Scope) -> str:
    """The client's address: the connection's, or the one a trusted proxy named (uvicorn's
    proxy headers, `codeshelf serve --forwarded-allow-ips`)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


async def guessing_refusal(services: Services, scope: Scope) -> HTTPProblemError | None:
    """The 429 for an address that sent too many bad keys this minute (whatever key it sends
    now), or None: every door that checks a key asks this first."""
    per_minute = services.settings.auth_failures_per_minute
    refusal = await services.limiter.refusal_for_guessing(client_address(scope), per_minute)
    if refusal is None:
        return None
    return HTTPProblemError(
        "rate-limited",
        f"too many bad keys from this address; retry in {refusal.reset_seconds} s",
        headers={"Retry-After": str(refusal.reset_seconds)},
    )


async def count_failed_key(services: Services, scope: Scope) -> None:
    """One more bad key from the client's address."""
    per_minute = services.settings.auth_failures_per_minute
    await services.limiter.count_failed_key(client_address(scope), per_minute)


async def authenticate(
    request: Request,
    services: ServicesDep,
    authorization: Annotated[str | None, Header()] = None,
) -> Principal:
    """On the event loop, for every partner request: one statement, no thread hop. Bad keys
    are counted per client address: past the limit, every key from it gets 429 for the minute.
    """
    if not authorization:
        raise _unauthorized("send your API key as `Authorization: Bearer <key>`")
    refused = await guessing_refusal(services, request.scope)
    if refused is not None:
        raise refused
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 200:
        await count_failed_key(services, request.scope)
        raise _unauthorized("the Authorization header must be `Bearer <key>`", "invalid_request")
    found = await partners.authenticate_async(services.db.reads, token)
    if found is None:
        await count_failed_key(services, request.scope)
        raise _unauthorized("this API key is unknown or revoked", "invalid_token")
    partner, api_key = found
    setattr(request.state, PARTNER, partner.public_id)  # for the request's log line
    now = utcnow()
    if partners.key_use_is_stale(api_key, now):  # once a minute a key, in a thread: a write
        await run_in_threadpool(_record_key_use, services.db, api_key.id, now)
    quota = partner.rate_limit_per_minute or services.settings.rate_limit_per_minute
    decision = await services.limiter.hit_async(api_key.public_id, quota)
    setattr(request.state, RATE_LIMIT_HEADERS, decision.headers())
    if not decision.allowed:
        raise HTTPProblemError(
            "rate-limited",
            f"this key may make {quota} requests a minute; retry in {decision.reset_seconds} s",
            headers={"Retry-After": str(decision.reset_seconds)},
        )
    return Principal(partner, api_key)


def _record_key_use(db: Database, key_id: int, now: datetime) -> None:
    with db.session() as session:
        partners.record_key_use(session, key_id, now)


PrincipalDep = Annotated[Principal, Depends(authenticate)]


def authenticate_operator(
    request: Request,
    services: ServicesDep,
    authorization: Annotated[str | None, Header()] = None,
) -> OperatorKey:
    """An operator key, or 404: to anyone else (a partner key included) the admin API does not
    exist."""
    scheme, _, token = (authorization or "").partition(" ")
    key = None
    if scheme.lower() == "bearer" and 0 < len(token.strip()) <= 200:
        with services.db.read_session() as session:
            key = operators.authenticate(session, token.strip())
    if key is None:
        raise HTTPProblemError("not-found", f"nothing at {request.method} {request.url.path}")
    quota = services.settings.operator_rate_limit_per_minute
    decision = services.limiter.hit(key.public_id, quota)
    setattr(request.state, RATE_LIMIT_HEADERS, decision.headers())
    if not decision.allowed:  # a leaked or looping operator key is a key like any other
        raise HTTPProblemError(
            "rate-limited",
            f"this operator key may make {quota} requests a minute; "
            f"retry in {decision.reset_seconds} s",
            headers={"Retry-After": str(decision.reset_seconds)},
        )
    return key


OperatorDep = Annotated[OperatorKey, Depends(authenticate_operator)]
