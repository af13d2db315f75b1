"""Events (``kit.logs.event``): logged, and told to listeners (the worker's counters), whose
failure never fails the action the event reports."""

from __future__ import annotations

import logging
import sys
from typing import Any

import pytest

from codeshelf.kit import logs
from tests.fixtures.factories import random_code


def test_a_failing_listener_fails_nothing_and_the_event_is_still_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    heard: list[tuple[str, dict[str, Any]]] = []

    def broken(name: str, fields: dict[str, Any]) -> None:
        raise RuntimeError("a counter with the wrong labels")

    logs.listen(broken)
    logs.listen(lambda name, fields: heard.append((name, fields)))
    caplog.set_level(logging.INFO, logger="codeshelf.test")
    try:
        logs.event(logging.getLogger("codeshelf.test"), "backorder.filled", order="ord_1")
    finally:
        logs._listeners[-2:] = []
    assert heard == [("backorder.filled", {"order": "ord_1"})]
    [failure, logged] = [r for r in caplog.records if r.name.startswith("codeshelf")]
    assert "a listener of backorder.filled failed" in failure.getMessage()
    assert logs.fields_of(logged) == {"order": "ord_1"}


@pytest.mark.parametrize("formatter", [logs.JsonFormatter(), logs.TextFormatter()])
def test_what_is_shaped_like_a_secret_is_masked_in_any_line(
    formatter: logging.Formatter,
) -> None:
    key, operator = "cs_live_" + "a1B2-_" * 7, "cs_op_" + "Zz9" * 14
    hook, code = "whsec_" + "Ab+/" * 11 + "=", random_code()
    try:
        raise RuntimeError(f"SELECT 1 WHERE key = '{key}' AND code={code} ({hook}, {operator})")
    except RuntimeError:
        record = logging.getLogger("codeshelf.test").makeRecord(
            "codeshelf.test", logging.ERROR, "f", 1, "failed for %s", (key,), sys.exc_info()
        )
    line = formatter.format(record)
    for secret in (key, operator, hook, code, code.replace("-", "")[:8]):
        assert secret not in line
    assert "cs_live_[redacted]" in line and "whsec_[redacted]" in line
    assert "[code redacted]" in line
    assert "RuntimeError" in line  # the error itself is still there


def test_masking_leaves_ids_dates_and_routes_alone() -> None:
    text = "ord_1a2b3c4d5e6f7a8b9c0d 2026-12-01T22:43:17 /api/v1/orders/{order_id} ABCD-1234"
    assert logs.redact(text) == text
