"""The base of every domain error. Services raise these; the API maps each to a problem type."""

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
