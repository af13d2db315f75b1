"""RFC 9457 problem details: one stable type URI and title per kind of problem."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from codeshelf.kit import problem_types
from codeshelf.kit.errors import DomainError, http_status

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = problem_types.BASE_URI
QUOTA_EXCEEDED = problem_types.QUOTA_EXCEEDED

log = logging.getLogger("codeshelf.api")

# Titles, types and their explanations live in one catalog (kit.problem_types).
type_uri = problem_types.type_uri
title_for = problem_types.title_for


# Starlette's own refusals (no route, wrong method, body it cannot decode) by status.
SLUG_BY_HTTP_STATUS = {
    400: "malformed-request",
    404: "not-found",
    405: "method-not-allowed",
    413: "payload-too-large",
}


def problem_body(
    slug: str, status: int, detail: str, instance: str | None = None, **extras: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": type_uri(slug),
        "title": title_for(slug),
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update({key: value for key, value in extras.items() if value is not None})
    return body


def error_body(error: DomainError, instance: str | None = None) -> tuple[int, dict[str, Any]]:
    status = http_status(error)
    errors = None
    if error.pointer is not None:
        errors = [_located(error.detail, error.pointer)]
    return status, problem_body(
        error.slug, status, error.detail, instance, errors=errors, **error.extras
    )


def problem_response(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> Response:
    return Response(json.dumps(body), status_code=status, media_type=PROBLEM_JSON, headers=headers)


class HTTPProblemError(DomainError):
    """A problem raised by the HTTP layer itself (authentication, rate limit, headers)."""

    def __init__(
        self, slug: str, detail: str, *, headers: dict[str, str] | None = None, **extras: Any
    ) -> None:
        super().__init__(detail, **extras)
        self.slug = slug
        self.headers = headers or {}


def _located(detail: str, where: str) -> dict[str, str]:
    """A field error: ``pointer`` (JSON Pointer) for the body, ``parameter``/``header`` else."""
    kind, _, name = where.partition(":")
    if kind in ("query", "path"):
        return {"detail": detail, "parameter": name}
    if kind == "header":
        return {"detail": detail, "header": name}
    return {"detail": detail, "pointer": where}


def _location(loc: tuple[int | str, ...]) -> str:
    source, path = (loc[0], loc[1:]) if loc else ("body", ())
    if source in ("query", "path", "header"):
        return f"{source}:{'/'.join(str(part) for part in path)}"
    return "#/" + "/".join(str(part) for part in path) if path else "#"


def _validation_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    return [
        _located(str(error.get("msg", "is invalid")), _location(tuple(error.get("loc", ()))))
        for error in exc.errors()
    ]


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app has for this request's path (a path's methods are
    often spread over several routes: GET and POST /orders are two)."""
    scope = {**request.scope, "method": "GET"}  # only the path decides
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        match, _ = route.matches(dict(scope))
        if match is not Match.NONE and route.methods:
            methods |= route.methods
    return sorted(methods)


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> Response:
        status, body = error_body(exc, request.url.path)
        headers = dict(exc.headers) if isinstance(exc, HTTPProblemError) else {}
        if exc.retry_after_seconds is not None:
            headers["Retry-After"] = str(exc.retry_after_seconds)
        return problem_response(status, body, headers or None)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        if any(error.get("type") == "json_invalid" for error in exc.errors()):
            body = problem_body(
                "malformed-request", 400, "the body is not valid JSON", request.url.path
            )
            return problem_response(400, body)
        errors = _validation_errors(exc)
        detail = "; ".join(
            f"{next(v for k, v in e.items() if k != 'detail')}: {e['detail']}" for e in errors[:3]
        )
        body = problem_body("validation-error", 422, detail, request.url.path, errors=errors)
        return problem_response(422, body)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # FastAPI answers 400 itself for bodies it cannot even decode (bad UTF-8, nesting).
        slug = SLUG_BY_HTTP_STATUS.get(exc.status_code, "http-error")
        detail = str(exc.detail) if exc.detail else title_for(slug)
        if exc.status_code == 400:
            detail = "the body could not be parsed as JSON"
        if exc.status_code == 404:
            detail = f"nothing at {request.method} {request.url.path}"
        body = problem_body(slug, exc.status_code, detail, request.url.path)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette names only the methods of the first route that matched the path.
            headers["Allow"] = ", ".join(allowed_methods(request))
        return problem_response(exc.status_code, body, headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        body = problem_body(
            "internal-error", 500, "something went wrong on our side", request.url.path
        )
        return problem_response(500, body)
