"""Events (``kit.logs.event``): logged, and told to listeners (the worker's counters), whose
failure never fails the action the event reports."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from codeshelf.kit import logs


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
