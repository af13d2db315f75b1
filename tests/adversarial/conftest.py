"""Quiet server-side tracebacks while the adversarial tests run.

These tests provoke 500s on purpose. After a 500, the live server's thread logs the traceback,
and Python 3.11 formats tracebacks with ``ast`` (the ``^^^`` markers); pytest, in the main
thread, uses ``ast`` at the same moment to report the expected failures of xfail tests. The
two race on CPython's AST recursion counter ("SystemError: AST constructor recursion depth
mismatch"), which aborts the session. The response bodies carry what the tests check.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

SERVER_LOGGERS = ("uvicorn.error", "codeshelf.api", "codeshelf.idempotency")


@pytest.fixture(autouse=True)
def _no_server_tracebacks(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in SERVER_LOGGERS:
        monkeypatch.setattr(logging.getLogger(name), "disabled", True)
    yield
