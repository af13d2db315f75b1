"""The portal's tests drive a real Chromium against the app served on loopback.

A page does the same on either database: what differs between them (locks, races, the import's
write lock) is held by the service, API and worker tests, which run on both. So the pages are
tested on PostgreSQL, what a deployment runs, and only the tests marked ``both_backends`` (the
whole first day, the console's import of a large file) on SQLite too; a module may name its own
``backend`` (the offline reference needs no database).
"""

from __future__ import annotations

import pytest

from tests.fixtures.browser import browser, portal
from tests.fixtures.databases import run_only_on

__all__ = ["browser", "portal"]


@pytest.hookimpl(tryfirst=True)  # before the marks are read
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    run_only_on(metafunc, "postgresql", unless="both_backends")
