"""Exceptions: one class per kind of problem the API answers (RFC 9457 problem details), each
carrying the whole problem document, and a fallback for problem types this version does not know.

A problem's kind is the last part of its ``type`` URI (its *slug*), stable across releases."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar

import httpx

RATE_LIMIT_TYPE = "https://iana.org/assignments/http-problem-types#quota-exceeded"


class CodeshelfError(Exception):
    """Anything this client raises."""


class APIConnectionError(CodeshelfError):
    """No answer came back (the connection failed, dropped or timed out) and the retry budget
    ran out. For a ``POST`` the outcome is unknown: the server may have done the work. Retry
    later with the same ``idempotency_key`` (never a new one), or look the order up by its
    ``client_order_id``; escalate to manual review rather than buy again."""

    def __init__(self, message: str, *, method: str, url: str, idempotency_key: str | None):
        super().__init__(message)
        self.method = method
        self.url = url
        self.idempotency_key = idempotency_key


@dataclass(frozen=True)
class FieldError:
    """One offending field: ``pointer`` (a JSON Pointer into the body, such as ``#/quantity``),
    or the query ``parameter`` or ``header`` named."""

    detail: str
    pointer: str | None = None
    parameter: str | None = None
    header: str | None = None


class ProblemError(CodeshelfError):
    """The API refused the request with a problem document (``problem``, the whole JSON)."""

    slug: ClassVar[str] = ""
    retryable: ClassVar[bool] = False

    def __init__(
        self,
        problem: dict[str, Any],
        *,
        headers: httpx.Headers | None = None,
        idempotency_key: str | None = None,
    ) -> None:
        self.problem = problem
        self.headers = headers or httpx.Headers()
        self.idempotency_key = idempotency_key
        super().__init__(f"{self.status} {self.type_slug}: {self.detail}")

    @property
    def type(self) -> str:
        return str(self.problem.get("type", "about:blank"))

    @property
    def type_slug(self) -> str:
        return slug_of(self.type)

    @property
    def status(self) -> int:
        status = self.problem.get("status")
        return status if isinstance(status, int) else 0

    @property
    def title(self) -> str:
        return str(self.problem.get("title", ""))

    @property
    def detail(self) -> str:
        return str(self.problem.get("detail", ""))

    @property
    def instance(self) -> str | None:
        instance = self.problem.get("instance")
        return instance if isinstance(instance, str) else None

    @property
    def errors(self) -> list[FieldError]:
        found = self.problem.get("errors")
        if not isinstance(found, list):
            return []
        return [
            FieldError(
                detail=str(item.get("detail", "")),
                pointer=item.get("pointer"),
                parameter=item.get("parameter"),
                header=item.get("header"),
            )
            for item in found
            if isinstance(item, dict)
        ]

    @property
    def retry_after(self) -> float | None:
        """Seconds the server asked us to wait (``Retry-After``), if it said."""
        return parse_retry_after(self.headers.get("retry-after"))


class BadRequest(ProblemError):
    slug = "malformed-request"


class IdempotencyKeyMissing(BadRequest):
    slug = "idempotency-key-missing"


class IdempotencyKeyInvalid(BadRequest):
    slug = "idempotency-key-invalid"


class IdempotencyKeyMismatch(BadRequest):
    slug = "idempotency-key-mismatch"


class Unauthorized(ProblemError):
    slug = "unauthorized"


class InsufficientFunds(ProblemError):
    slug = "insufficient-funds"


class Forbidden(ProblemError):
    slug = "not-allowed"


class SandboxOnly(Forbidden):
    """A sandbox tool called with a live key."""

    slug = "sandbox-only"


class NotFound(ProblemError):
    """Nothing there for this key (any ``*-not-found`` type)."""

    slug = "not-found"


class Conflict(ProblemError):
    slug = "conflict"


class InsufficientStock(Conflict):
    slug = "insufficient-stock"


class DuplicateClientOrderId(Conflict):
    """Another order already has this ``client_order_id``: ``existing_order_id`` names it."""

    slug = "duplicate-client-order-id"

    @property
    def existing_order_id(self) -> str | None:
        found = self.problem.get("existing_order_id")
        return found if isinstance(found, str) else None


class IdempotencyKeyInUse(Conflict):
    """The first request with this key is still running: retried after ``Retry-After``."""

    slug = "idempotency-key-in-use"
    retryable = True


class ClaimRefused(Conflict):
    """A claim the rules refuse: a code already claimed or remedied, the window closed, …"""

    slug = "claim-refused"


class ValidationFailed(ProblemError):
    """The request is not valid; ``errors`` points at each offending field."""

    slug = "validation-error"

    @property
    def pointers(self) -> list[str]:
        return [e.pointer or e.parameter or e.header or "" for e in self.errors]


class UnknownProduct(ValidationFailed):
    slug = "unknown-product"


class IdempotencyKeyReused(ValidationFailed):
    """The key was used before with another request body: a bug in the caller, never retried."""

    slug = "idempotency-key-reused"


class WebhookUrlRefused(ValidationFailed):
    slug = "webhook-url-refused"


class PayloadTooLarge(ProblemError):
    slug = "payload-too-large"


class RateLimited(ProblemError):
    """Too many requests for this key: retried after ``Retry-After`` within the time budget."""

    slug = "rate-limited"
    retryable = True


class RequestTimeout(ProblemError):
    """408: the request reached the server too slowly and was cut before the API acted on it;
    retried (with the same Idempotency-Key) within the time budget."""

    slug = "request-timeout"
    retryable = True


class ServerError(ProblemError):
    """A 5xx: retried when repeating the request is safe."""

    slug = "internal-error"


class UnknownProblem(ProblemError):
    """A problem type this version of the client does not know: read ``problem``."""


_BY_SLUG: dict[str, type[ProblemError]] = {
    cls.slug: cls
    for cls in (
        BadRequest,
        IdempotencyKeyMissing,
        IdempotencyKeyInvalid,
        IdempotencyKeyMismatch,
        Unauthorized,
        InsufficientFunds,
        Forbidden,
        SandboxOnly,
        NotFound,
        Conflict,
        InsufficientStock,
        DuplicateClientOrderId,
        IdempotencyKeyInUse,
        ValidationFailed,
        UnknownProduct,
        IdempotencyKeyReused,
        WebhookUrlRefused,
        PayloadTooLarge,
        RateLimited,
        RequestTimeout,
        ServerError,
    )
}
_BY_SLUG.update(
    {
        slug: ClaimRefused
        for slug in (
            "claim-already-open",
            "claim-not-eligible",
            "claim-window-closed",
            "claim-state-conflict",
            "code-already-remedied",
            "code-not-on-order",
            "codes-not-ready",
            "replacement-waiting-for-stock",
        )
    }
)
_BY_SLUG.update(
    {
        "invalid-cursor": BadRequest,
        "method-not-allowed": BadRequest,
        "mixed-currency": ValidationFailed,
        "product-retired": ValidationFailed,
        "evidence-not-an-image": ValidationFailed,
        "order-not-under-review": Conflict,
    }
)
_BY_SLUG.update({"evidence-too-large": PayloadTooLarge, "evidence-unavailable": ServerError})
_BY_STATUS: dict[int, type[ProblemError]] = {
    400: BadRequest,
    401: Unauthorized,
    402: InsufficientFunds,
    403: Forbidden,
    404: NotFound,
    408: RequestTimeout,
    409: Conflict,
    413: PayloadTooLarge,
    422: ValidationFailed,
    429: RateLimited,
}


def slug_of(type_uri: str) -> str:
    """``https://codeshelf.dev/problems/insufficient-funds`` -> ``insufficient-funds``."""
    if type_uri == RATE_LIMIT_TYPE:
        return "rate-limited"
    return type_uri.rstrip("/").rsplit("/", 1)[-1]


def class_for(slug: str, status: int) -> type[ProblemError]:
    """The exception class of a problem: by its slug, else by its status, else the fallback."""
    if slug in _BY_SLUG:
        return _BY_SLUG[slug]
    if slug.endswith("-not-found"):
        return NotFound
    if status >= 500:
        return ServerError
    return _BY_STATUS.get(status, UnknownProblem)


def problem_from(response: httpx.Response, idempotency_key: str | None) -> ProblemError:
    """The exception for an error response (a body that is no problem document, as a proxy's
    502 page, becomes one with the status and the start of the text)."""
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    if not isinstance(body, dict) or "type" not in body:
        body = {
            "type": "about:blank",
            "title": response.reason_phrase,
            "status": response.status_code,
            "detail": response.text[:200],
        }
    body.setdefault("status", response.status_code)
    slug = slug_of(str(body["type"]))
    cls = class_for(slug, response.status_code)
    return cls(body, headers=response.headers, idempotency_key=idempotency_key)


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000": UTC, its source unknown (RFC 5322)
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
