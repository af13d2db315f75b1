"""Every database test runs on SQLite and on a real PostgreSQL (the ``backend`` parameter).

An ordinary test runs in one transaction of its worker's database, rolled back at its end, and
reaches the API in process (``client``). A test marked ``live`` — or asking for ``live_server``
— gets a fresh database with real commits and the real app under uvicorn on loopback: races,
crashes, the worker, anything another thread or process must see. See tests/fixtures/.
"""

from __future__ import annotations

import os

# rich sizes the CLI's tables when its consoles are made, at import: wide, whatever the terminal
# (an xdist worker has none), so a table never wraps a name the CLI tests look for.
os.environ["COLUMNS"] = "200"
# A relative PYTHONPATH (`PYTHONPATH=src pytest`) means nothing to a `codeshelf` process started
# in another directory, which would then run the installed package instead of this tree's.
if os.environ.get("PYTHONPATH"):
    os.environ["PYTHONPATH"] = os.pathsep.join(
        os.path.abspath(part) for part in os.environ["PYTHONPATH"].split(os.pathsep) if part
    )

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from codeshelf.kit import migrate
from codeshelf.kit.db import Database
from codeshelf.kit.settings import Settings, get_settings
from codeshelf.kit.vault import Vault
from tests.fixtures import factories, leaks
from tests.fixtures.databases import (
    Backend,
    PostgresBackend,
    SQLiteBackend,
    start_postgres,
)
from tests.fixtures.factories import SECRET
from tests.fixtures.postgres import Postgres
from tests.fixtures.servers import LIVE_SERVERS, LiveServer, in_process_client, serve

LIVE = "live"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{LIVE}: real commits on a fresh database, and a real server on loopback"
    )
    leaks.start()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The last check of every run: no log line holds a code or key the tests made."""
    controller = not hasattr(session.config, "workerinput")
    directory, found = leaks.finish(controller)
    if not controller:
        return
    if found:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        lines = "\n  ".join(sorted(set(found))[:50])
        message = f"secrets written to the logs (kept in {directory}):\n  {lines}"
        if reporter is not None:
            reporter.write_line(message, red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        return
    leaks.clean(directory)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "live_server" in getattr(item, "fixturenames", ()):
            item.add_marker(LIVE)
    # The longest tests first: they run beside the rest instead of after them, on one worker.
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def is_live(request: pytest.FixtureRequest) -> bool:
    return request.node.get_closest_marker(LIVE) is not None


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    migrate.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def sqlite_backend(
    sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SQLiteBackend]:
    backend = SQLiteBackend(sqlite_template, tmp_path_factory.mktemp("worker"))
    yield backend
    backend.engine.dispose()


@pytest.fixture(scope="session")
def postgresql_backend(postgres: Postgres) -> Iterator[PostgresBackend]:
    backend = PostgresBackend(postgres)
    yield backend
    backend.engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> Backend:
    chosen: Backend = request.getfixturevalue(f"{request.param}_backend")
    return chosen


@pytest.fixture
def db(backend: Backend, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if is_live(request):
        database = Database(backend.fresh(tmp_path))
        yield database
        database.dispose()
        return
    with backend.transaction() as database, factories.bound(database):
        yield database


@pytest.fixture
def database_url(db: Database) -> str:
    """The test's database: ``run_cli`` given it runs the CLI inside the test's transaction."""
    return db.url


@pytest.fixture
def empty_database_url(backend: Backend, tmp_path: Path) -> str:
    """A database without any schema, of the same kind as the test's."""
    if isinstance(backend, PostgresBackend):
        return backend.empty()
    return f"sqlite:///{tmp_path / 'empty.db'}"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        evidence_dir=tmp_path / "evidence",
        secret_key=SECRET,  # type: ignore[arg-type]
        rate_limit_per_minute=100_000,
        # Tests present bad keys on purpose, all from one address: the limit has tests of its own.
        auth_failures_per_minute=100_000,
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture
def vault() -> Vault:
    return Vault(SECRET)


@pytest.fixture(scope="session", autouse=True)
def _cheap_password_hashes() -> Iterator[None]:
    """argon2id at its cheapest in this process: every browser test makes and checks
    passwords, and the production cost (about 0.1 s a hash) is what makes guessing slow, not
    what a test is about. Hashes keep their parameters, so checking works either way; tests
    in other processes (the served wheel) use the real cost."""
    from argon2 import PasswordHasher, profiles

    from codeshelf.members.service import credentials

    real = credentials._hasher
    credentials._hasher = PasswordHasher.from_parameters(profiles.CHEAPEST)
    yield
    credentials._hasher = real


@pytest.fixture(scope="session", autouse=True)
def _live_servers() -> Iterator[None]:
    yield
    LIVE_SERVERS.stop()


@pytest.fixture
def live_server(settings: Settings) -> Iterator[LiveServer]:
    """A real server on loopback, serving this test's settings and database."""
    with LIVE_SERVERS.serving(settings) as server:
        yield server


@pytest.fixture
def client(
    request: pytest.FixtureRequest, settings: Settings, db: Database
) -> Iterator[httpx.Client]:
    if is_live(request):
        server: LiveServer = request.getfixturevalue("live_server")
        with httpx.Client(base_url=server.url, timeout=60) as http:
            yield http
        return
    with in_process_client(settings, db) as http:
        yield http


@pytest.fixture
def hook_settings(settings: Settings) -> Settings:
    """The test's settings with ``webhook_allow_private`` on: a loopback receiver may be
    registered as a webhook endpoint."""
    return settings.model_copy(update={"webhook_allow_private": True})


@pytest.fixture
def hook_client(hook_settings: Settings, db: Database) -> Iterator[httpx.Client]:
    """The API with ``hook_settings``."""
    with serve(hook_settings, db) as http:
        yield http


@pytest.fixture
def shop(db: Database, vault: Vault) -> factories.Shop:
    return factories.make_shop(db, vault)


@pytest.fixture(autouse=True)
def _fresh_settings_cache() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
