"""The base of every domain error. Services raise these; the doors map each to an HTTP status
(``http_status``): the API to a problem type, the portal to a page."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A refusal with a stable ``slug`` (the last part of its problem type URI).

    ``pointer`` names the offending request field (JSON Pointer) where there is one.
    """

    slug = "domain-error"
    # A refusal that came from doing the work (out of stock, out of money), as opposed to bad
    # input: the idempotency layer stores it and replays it to retries.
    business_refusal = False
    # Set when trying again later may succeed (a key still in use): the API sends Retry-After.
    retry_after_seconds: int | None = None

    def __init__(self, detail: str, *, pointer: str | None = None, **extras: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.pointer = pointer
        self.extras = extras


class NotFoundError(DomainError):
    slug = "not-found"


class ConflictError(DomainError):
    slug = "conflict"


class InvalidInputError(DomainError):
    slug = "validation-error"


class InvalidCursorError(InvalidInputError):
    """A pagination cursor this API did not issue to this partner."""

    slug = "invalid-cursor"

    def __init__(self) -> None:
        super().__init__("the cursor is not one this API issued", pointer="query:cursor")


# Status per slug where the error's base class does not already say it.
STATUS_BY_SLUG = {
    "insufficient-funds": 402,
    "invalid-cursor": 400,
    "malformed-request": 400,
    "idempotency-key-missing": 400,
    "idempotency-key-invalid": 400,
    "idempotency-key-mismatch": 400,
    "idempotency-key-reused": 422,
    "idempotency-key-in-use": 409,
    "unauthorized": 401,
    "not-found": 404,
    "sandbox-only": 403,
    "not-allowed": 403,
    # Four eyes: the person who asked for a deposit may not decide it; another person may.
    "four-eyes": 403,
    "method-not-allowed": 405,
    "payload-too-large": 413,
    "evidence-too-large": 413,
    "evidence-unavailable": 503,
    "not-ready": 503,
    "request-timeout": 408,
    "rate-limited": 429,
    "internal-error": 500,
}


def http_status(error: DomainError) -> int:
    """The HTTP status every door answers ``error`` with."""
    if error.slug in STATUS_BY_SLUG:
        return STATUS_BY_SLUG[error.slug]
    if isinstance(error, NotFoundError):
        return 404
    if isinstance(error, ConflictError):
        return 409
    if isinstance(error, InvalidInputError):
        return 422
    return 400
