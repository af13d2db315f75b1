"""/healthz and /readyz: what a load balancer and an orchestrator ask, answered without a key and
without telling anything (no versions, paths or error text)."""

from __future__ import annotations

from pathlib import Path

import httpx

from codeshelf.kit.db import Database
from codeshelf.kit.settings import Settings
from tests.fixtures.http import assert_problem
from tests.fixtures.servers import in_process_client


def test_healthz_answers_without_a_key(client: httpx.Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["cache-control"] == "no-store"


def test_readyz_is_ready_on_a_current_database(client: httpx.Client, settings: Settings) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "schema": "ok", "evidence": "ok"},
    }
    assert settings.evidence_dir.is_dir()  # made, as the store would make it
    assert list(settings.evidence_dir.iterdir()) == []  # and the probe left nothing behind


def _answer(settings: Settings, database_url: str) -> httpx.Response:
    """/readyz of the app pointed at another database than the test's."""
    database = Database(database_url)
    try:
        with in_process_client(
            settings.model_copy(update={"database_url": database_url}), database
        ) as http:
            return http.get("/readyz")
    finally:
        database.dispose()


def _not_ready(response: httpx.Response, failing: set[str], *secrets: str) -> None:
    body = assert_problem(response, 503, "not-ready")
    assert {name for name, state in body["checks"].items() if state == "failing"} == failing
    for secret in secrets:  # no path, driver or error text
        assert secret not in response.text


def test_readyz_is_not_ready_while_the_schema_is_behind(
    settings: Settings, empty_database_url: str
) -> None:
    _not_ready(_answer(settings, empty_database_url), {"schema"}, "alembic", "revision")


def test_readyz_is_not_ready_without_the_database(settings: Settings, tmp_path: Path) -> None:
    gone = tmp_path / "no-such-directory" / "codeshelf.db"
    response = _answer(settings, f"sqlite:///{gone}")
    _not_ready(response, {"database", "schema"}, "no-such-directory", "sqlite", "Error")


def test_readyz_is_not_ready_when_evidence_cannot_be_stored(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    changed = settings.model_copy(update={"evidence_dir": blocker / "evidence"})
    with in_process_client(changed, db) as http:
        response = http.get("/readyz")
    _not_ready(response, {"evidence"}, "a-file", "evidence/")


def test_health_is_in_neither_openapi_document(client: httpx.Client) -> None:
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    assert not {"/healthz", "/readyz"} & set(paths)
