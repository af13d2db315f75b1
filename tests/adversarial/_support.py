"""Shared helpers for the adversarial tests."""

from __future__ import annotations

import ssl
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import httpx
from sqlalchemy import func, select

from codeshelf.idempotency.models import IdempotencyRecord
from codeshelf.invariants import check_all
from codeshelf.kit.db import Database

T = TypeVar("T")
# Plain HTTP to 127.0.0.1: no TLS, and building a default context per client costs ~20 ms.
_LOOPBACK_ONLY = ssl.create_default_context()

ORDERS = "/api/v1/orders"
ONE = {"product_id": "psn-us-50", "quantity": 1}


def request(
    base_url: str,
    method: str,
    path: str,
    *,
    headers: Mapping[str, str] | Mapping[bytes, bytes] | None = None,
    content: bytes | None = None,
    json: Any = None,
) -> httpx.Response:
    """One request on a connection of its own (uvicorn drops a connection after a 500)."""
    with httpx.Client(base_url=base_url, timeout=30, verify=_LOOPBACK_ONLY) as http:
        return http.request(method, path, headers=headers, content=content, json=json)


def post_order(
    base_url: str,
    headers: dict[str, str],
    content: bytes,
    *,
    content_type: str | None = "application/json",
    key: str | None = None,
) -> httpx.Response:
    sent = {**headers, "Idempotency-Key": key or str(uuid.uuid4())}
    if content_type is not None:
        sent["Content-Type"] = content_type
    return request(base_url, "POST", ORDERS, headers=sent, content=content)


def assert_clean_problem(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    """A problem+json refusal with one of ``statuses``, that gives nothing internal away."""
    assert response.status_code in statuses, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == response.status_code
    assert body["type"].startswith(("https://codeshelf.dev/problems/", "https://iana.org/"))
    assert body["title"] and body["detail"]
    lowered = response.text.lower()
    for leak in ("traceback", "sqlalchemy", "psycopg", "sqlite", "select ", "insert into"):
        assert leak not in lowered, response.text
    return body


def violations(db: Database) -> list[str]:
    with db.read_session() as session:
        return check_all(session)


def stored_keys(db: Database) -> int:
    with db.read_session() as session:
        return session.scalar(select(func.count()).select_from(IdempotencyRecord)) or 0


def each(cases: Iterable[T], check: Callable[[T], None]) -> None:
    """Run ``check`` on every case and report every case that failed, not just the first."""
    failures = []
    for case in cases:
        try:
            check(case)
        except AssertionError as exc:
            failures.append(f"{case!r:.120}: {exc}")
    assert not failures, "\n".join(failures)
