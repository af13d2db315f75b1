"""One structured line per request: its id (the client's when sane, echoed as X-Request-Id),
the route template (no ids), the status, the duration and, once authenticated, the partner."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from codeshelf.kit.logs import JsonFormatter, TextFormatter, fields_of
from tests.fixtures.factories import Shop
from tests.fixtures.http import order


@pytest.fixture
def lines(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="codeshelf.request")
    return caplog


def _requests(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "codeshelf.request"]


def test_each_request_gets_one_line_with_its_id_route_and_partner(
    client: httpx.Client, shop: Shop, lines: pytest.LogCaptureFixture
) -> None:
    placed = order(client, shop.a.headers)
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["id"]
    lines.clear()
    response = client.get(f"/api/v1/orders/{order_id}", headers=shop.a.headers)
    assert response.status_code == 200
    [record] = _requests(lines)
    line = json.loads(JsonFormatter().format(record))
    assert line["request_id"] == response.headers["x-request-id"]
    assert len(line["request_id"]) == 32  # made here: the client sent none
    assert line | {"time": None, "duration_ms": None} == {
        "time": None,
        "level": "info",
        "logger": "codeshelf.request",
        "event": "request",
        "request_id": line["request_id"],
        "method": "GET",
        "route": "/api/v1/orders/{order_id}",  # the template: no order id
        "status": 200,
        "duration_ms": None,
        "client": "127.0.0.1",
        "partner": shop.a.id,
    }
    assert isinstance(line["duration_ms"], float)
    assert order_id not in JsonFormatter().format(record)


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("req-2026.12:01_a", True),
        ("x" * 128, True),
        ("x" * 129, False),  # too long
        ("two words", False),
        ("id\u00e9", False),  # not ASCII
        ('a"}{"forged": 1', False),  # not a log injection either
    ],
)
def test_a_sane_incoming_request_id_is_kept_and_anything_else_replaced(
    client: httpx.Client, lines: pytest.LogCaptureFixture, sent: str, kept: bool
) -> None:
    response = client.get("/healthz", headers={"X-Request-Id": sent.encode("utf-8")})
    echoed = response.headers["x-request-id"]
    assert (echoed == sent) is kept
    [record] = _requests(lines)
    assert fields_of(record)["route"] == "/healthz"
    assert "partner" not in fields_of(record)  # nobody authenticated


def test_two_request_ids_are_one_too_many(client: httpx.Client) -> None:
    response = client.get("/healthz", headers=[("X-Request-Id", "a"), ("X-Request-Id", "b")])
    assert response.headers["x-request-id"] not in ("a", "b")


def test_requests_answered_before_routing_are_unmatched_not_their_path(
    client: httpx.Client, shop: Shop, lines: pytest.LogCaptureFixture
) -> None:
    client.get("/api/v1/no/such/ord_123")  # 404 of the router
    client.get("/api/v1/admin/partners/ptn_123", headers=shop.a.headers)  # hidden admin API
    routes = [(fields_of(r)["route"], fields_of(r)["status"]) for r in _requests(lines)]
    assert routes == [("unmatched", 404), ("unmatched", 404)]


def test_a_wrong_key_is_logged_without_a_partner(
    client: httpx.Client, lines: pytest.LogCaptureFixture
) -> None:
    client.get("/api/v1/inventory", headers={"Authorization": "Bearer cs_live_wrong"})
    [record] = _requests(lines)
    assert fields_of(record)["status"] == 401
    assert "partner" not in fields_of(record)


def test_the_text_format_is_one_readable_line(
    client: httpx.Client, lines: pytest.LogCaptureFixture
) -> None:
    client.get("/healthz", headers={"X-Request-Id": "abc"})
    [record] = _requests(lines)
    text = TextFormatter().format(record)
    assert "\n" not in text
    assert " INFO codeshelf.request request request_id=abc method=GET route=/healthz" in text
