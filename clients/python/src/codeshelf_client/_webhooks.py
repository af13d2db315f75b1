"""Verifying a webhook (Standard Webhooks v1): an HMAC-SHA256 signature over
``{webhook-id}.{webhook-timestamp}.{raw body}`` and a timestamp within a tolerance."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from codeshelf_client._errors import CodeshelfError

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
TOLERANCE_SECONDS = 300  # the reference library's five minutes


class WebhookVerificationError(CodeshelfError):
    """The webhook is not from codeshelf, was altered, or is too old (a replay): answer 400."""


def verify_webhook(
    payload: bytes | str,
    headers: Mapping[str, str],
    secret: str | Sequence[str],
    *,
    tolerance: int = TOLERANCE_SECONDS,
    now: float | None = None,
) -> dict[str, Any]:
    """The webhook's JSON body once its signature and timestamp check out.

    ``payload`` is the raw body as received (before any JSON parsing); ``headers`` the request's
    headers (any case); ``secret`` the endpoint's ``whsec_…`` secret, or several: during a
    rotation pass the new and the previous one, and a message signed with either is accepted.
    Raises ``WebhookVerificationError`` otherwise. Deduplicate on ``headers["webhook-id"]``:
    a delivery may come more than once."""
    body = payload.encode() if isinstance(payload, str) else payload
    found = {name.lower(): value for name, value in headers.items()}
    message_id = found.get("webhook-id")
    stamp = found.get("webhook-timestamp")
    signatures = found.get("webhook-signature")
    if not message_id or not stamp or not signatures:
        raise WebhookVerificationError("missing webhook-id, webhook-timestamp or signature")
    timestamp = _timestamp(stamp, tolerance, time.time() if now is None else now)
    signed = f"{message_id}.{timestamp}.".encode() + body
    secrets_ = [secret] if isinstance(secret, str) else list(secret)
    expected = [_sign(key, signed) for key in secrets_]
    for candidate in signatures.split():
        version, _, value = candidate.partition(",")
        if version != "v1":
            continue
        if any(hmac.compare_digest(value.encode(), sig.encode()) for sig in expected):
            return _json(body)
    raise WebhookVerificationError("no signature matches the secret")


def _timestamp(stamp: str, tolerance: int, now: float) -> int:
    if not (stamp.isascii() and stamp.isdigit()):
        raise WebhookVerificationError("webhook-timestamp is not an integer")
    timestamp = int(stamp)
    if abs(now - timestamp) > tolerance:
        raise WebhookVerificationError("webhook-timestamp is outside the tolerance")
    return timestamp


def _sign(secret: str, signed: bytes) -> str:
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except binascii.Error as exc:
        raise ValueError("the secret is not a whsec_ base64 secret") from exc
    return base64.b64encode(hmac.digest(key, signed, hashlib.sha256)).decode()


def _json(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError as exc:
        raise WebhookVerificationError("the body is not JSON") from exc
    if not isinstance(value, dict):
        raise WebhookVerificationError("the body is not a JSON object")
    return value
