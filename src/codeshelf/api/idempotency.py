"""The HTTP side of idempotency: reading the key from the request (a token or a quoted
structured-field string, or the body's ``idempotency_key``), and replaying a stored answer.

Running the work once per key is the idempotency domain's (``codeshelf.idempotency.service``).
"""

from __future__ import annotations

import json
from collections.abc import Callable

import http_sfv
from fastapi import Response

from codeshelf.api.problems import PROBLEM_JSON, HTTPProblemError, error_body
from codeshelf.idempotency.service import MAX_KEY_LENGTH, StoredResponse, is_valid_key
from codeshelf.kit.errors import DomainError


def parse_key(header: str | None, body_key: str | None) -> str:
    """The request's key from the header (a token or a quoted sf-string) or the body field."""
    from_header = _parse_header(header) if header is not None else None
    if from_header is not None and body_key is not None and from_header != body_key:
        raise HTTPProblemError(
            "idempotency-key-mismatch",
            "the Idempotency-Key header and the body's idempotency_key differ",
        )
    key = from_header if from_header is not None else body_key
    if key is None:
        raise HTTPProblemError(
            "idempotency-key-missing",
            "send an Idempotency-Key header (a UUID is a good choice) so retries are safe",
        )
    if not is_valid_key(key):
        raise HTTPProblemError(
            "idempotency-key-invalid",
            f"an idempotency key is 1 to {MAX_KEY_LENGTH} visible ASCII characters",
        )
    return key


def _parse_header(raw: str) -> str:
    value = raw.strip()
    if not value.startswith('"'):
        return value
    try:
        item = http_sfv.Item()
        item.parse(value.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise HTTPProblemError(
            "idempotency-key-invalid", "the quoted Idempotency-Key is not a valid string"
        ) from exc
    if not isinstance(item.value, str):
        raise HTTPProblemError("idempotency-key-invalid", "the Idempotency-Key must be a string")
    return item.value


def refusal_renderer(instance: str) -> Callable[[DomainError], tuple[int, str]]:
    """How a business refusal is stored for replay: its problem document, as first sent."""

    def render(error: DomainError) -> tuple[int, str]:
        status, body = error_body(error, instance)
        return status, json.dumps(body)

    return render


def replay_response(stored: StoredResponse, headers: dict[str, str] | None = None) -> Response:
    """The stored answer, marked ``Idempotent-Replayed: true`` when it is a replay."""
    sent = dict(headers or {})
    if stored.replayed:
        sent["Idempotent-Replayed"] = "true"
    media_type = PROBLEM_JSON if stored.status >= 400 else "application/json"
    return Response(stored.body, stored.status, headers=sent, media_type=media_type)
