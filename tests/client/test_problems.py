"""Reading error answers: every problem type the server raises has its exception, an unknown
type falls back by status, and an answer that is no problem document still becomes one."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx

from codeshelf.api.problems import type_uri
from codeshelf.kit.errors import STATUS_BY_SLUG
from codeshelf_client import (
    ClaimRefused,
    NotFound,
    ProblemError,
    RateLimited,
    ServerError,
    UnknownProblem,
    ValidationFailed,
)
from codeshelf_client._errors import parse_retry_after, problem_from

SRC = Path(__file__).resolve().parents[2] / "src" / "codeshelf"
# Raised only to operators (the console and the operator API) and the portal's sign-in: a
# partner's API key never meets them. A new type anywhere else must get its exception.
NOT_PARTNERS = {
    "domain-error",
    "account-locked",
    "application-already-open",
    "application-state-conflict",
    "batch-exists",
    "deposit-already-decided",
    "deposit-reference-conflict",
    "four-eyes",
    "import-job-lost",
    "import-refused",
    "invitation-unusable",
    "last-admin",
    "last-owner",
    "member-exists",
    "not-ready",  # GET /readyz, for load balancers
    "product-already-retired",
    "product-exists",
    "product-has-backorders",
    "product-not-retired",
    "sign-in-refused",
    "weak-password",
    "wrong-authentication-code",
}


def _answer(status: int, body: object, **headers: str) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.Response(status, content=content, headers=headers)


def _server_slugs() -> set[str]:
    found: set[str] = set(STATUS_BY_SLUG)
    for path in SRC.rglob("*.py"):
        found |= set(re.findall(r'^\s+slug = "([a-z-]+)"', path.read_text(), re.MULTILINE))
    return found


def test_every_problem_type_the_server_raises_reads_as_a_known_exception() -> None:
    for slug in sorted(_server_slugs() - NOT_PARTNERS):
        # A status the client has no fallback for: the type alone must name the exception.
        body = {"type": type_uri(slug), "title": "t", "status": 499, "detail": "d"}
        error = problem_from(_answer(499, body), "key-1")
        assert not isinstance(error, UnknownProblem), slug
        assert error.type_slug == slug and error.idempotency_key == "key-1"
    assert isinstance(
        problem_from(_answer(404, {"type": type_uri("claim-not-found")}), None), NotFound
    )
    assert isinstance(
        problem_from(_answer(409, {"type": type_uri("claim-already-open")}), None), ClaimRefused
    )


def test_unknown_types_fall_back_by_status_and_keep_the_document() -> None:
    body = {"type": "https://codeshelf.dev/problems/brand-new", "status": 422, "x_extra": 1}
    error = problem_from(_answer(422, body), None)
    assert type(error) is ValidationFailed and error.problem["x_extra"] == 1
    teapot = problem_from(_answer(418, {"type": "about:blank", "status": 418}), None)
    assert type(teapot) is UnknownProblem and isinstance(teapot, ProblemError)


def test_an_answer_that_is_no_problem_document_becomes_one() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    error = problem_from(_answer(502, b"<html>bad gateway</html>", **{"retry-after": when}), None)
    assert isinstance(error, ServerError) and error.status == 502
    assert "bad gateway" in error.detail
    assert error.retry_after is not None and 20 < error.retry_after <= 30
    limited = problem_from(
        _answer(429, {"type": type_uri("rate-limited"), "status": 429}, **{"retry-after": "7"}),
        None,
    )
    assert isinstance(limited, RateLimited) and limited.retry_after == 7


def test_retry_after_reads_seconds_and_every_http_date_form() -> None:
    later = datetime.now(UTC) + timedelta(seconds=30)
    for form in (
        format_datetime(later, usegmt=True),  # IMF-fixdate, as RFC 9110 asks
        later.strftime("%a, %d %b %Y %H:%M:%S -0000"),  # no zone information: UTC
        later.strftime("%A, %d-%b-%y %H:%M:%S GMT"),  # RFC 850, obsolete but allowed
    ):
        assert parse_retry_after(form) is not None, form
        assert 20 < (parse_retry_after(form) or 0) <= 30, form
    assert parse_retry_after(" 12 ") == 12
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0  # past: now
    for nonsense in ("-5", "1.5", "soon", "", "١٢"):
        assert parse_retry_after(nonsense) is None, nonsense
