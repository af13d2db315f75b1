"""Fixtures: every database test runs on SQLite and on a real PostgreSQL; the API is served by a
real uvicorn server on loopback."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy.engine import make_url

from codeshelf.api.app import create_app
from codeshelf.kit import migrate
from codeshelf.kit.db import Database
from codeshelf.kit.settings import Settings, get_settings
from codeshelf.kit.vault import Vault
from tests import factories
from tests.pgcluster import PostgresCluster, find_bindir

SECRET = "test-secret-key-not-for-production"
TEMPLATE = "codeshelf_template"


class Postgres:
    """Creates a fresh database per test by cloning a migrated template."""

    def __init__(self, admin_url: str, cluster: PostgresCluster | None = None) -> None:
        self.admin_url = make_url(admin_url)
        self.cluster = cluster

    def url(self, database: str) -> str:
        return self.admin_url.set(database=database).render_as_string(hide_password=False)

    def execute(self, sql: str) -> None:
        import psycopg

        libpq = self.admin_url.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(libpq, autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def create_database(self) -> str:
        name = f"t_{uuid.uuid4().hex[:16]}"
        self.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
        return self.url(name)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    external = os.environ.get("CODESHELF_TEST_POSTGRES_URL")
    cluster = None
    if external:
        server = Postgres(external)
    else:
        bindir = find_bindir()
        if bindir is None:
            message = "PostgreSQL server binaries not found (run `make test` to install them)"
            if os.environ.get("CI") == "true":
                pytest.fail(message)
            pytest.skip(message)
        cluster = PostgresCluster(bindir).start()
        server = Postgres(cluster.url(), cluster)
    server.execute(f"DROP DATABASE IF EXISTS {TEMPLATE}")
    server.execute(f"CREATE DATABASE {TEMPLATE}")
    migrate.upgrade(server.url(TEMPLATE))
    try:
        yield server
    finally:
        if cluster is not None:
            cluster.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    migrate.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    if request.param == "sqlite":
        target = tmp_path / "codeshelf.db"
        shutil.copy(sqlite_template, target)
        return f"sqlite:///{target}"
    server: Postgres = request.getfixturevalue("postgres")
    return server.create_database()


@pytest.fixture
def empty_database_url(
    database_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[str]:
    """A database without any schema, of the same kind as ``database_url``."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    server = request.getfixturevalue("postgres")
    name = f"e_{uuid.uuid4().hex[:16]}"
    server.execute(f"CREATE DATABASE {name}")
    yield server.url(name)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        evidence_dir=tmp_path / "evidence",
        secret_key=SECRET,  # type: ignore[arg-type]
        rate_limit_per_minute=100_000,
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    database = Database(settings.database_url)
    yield database
    database.dispose()


@pytest.fixture
def vault() -> Vault:
    return Vault(SECRET)


class LiveServer:
    """The real app under uvicorn, in a thread, on a loopback port of its own."""

    def __init__(self, settings: Settings) -> None:
        self.app = create_app(settings)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]})

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)
        self.sock.close()
        self.app.state.services.db.dispose()


@pytest.fixture
def live_server(settings: Settings) -> Iterator[LiveServer]:
    with LiveServer(settings) as server:
        yield server


@pytest.fixture
def client(live_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.url, timeout=60) as http:
        yield http


@pytest.fixture
def shop(db: Database, vault: Vault) -> factories.Shop:
    return factories.make_shop(db, vault)


@pytest.fixture(autouse=True)
def _fresh_settings_cache() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
