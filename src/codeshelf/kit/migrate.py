"""Schema migrations (Alembic), run programmatically by the CLI and the test harness."""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, create_engine


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(files("codeshelf") / "migrations"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str) -> None:
    command.upgrade(alembic_config(url), "head")


def is_current(url: str) -> bool:
    script = ScriptDirectory.from_config(alembic_config(url))
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_heads()
    finally:
        engine.dispose()
    return set(current) == set(script.get_heads())


def ensure_current(url: str) -> bool:
    """Upgrade when the schema is behind; returns True if it ran migrations."""
    if is_current(url):
        return False
    upgrade(url)
    return True


@lru_cache(maxsize=1)
def heads() -> frozenset[str]:
    """The revisions a current schema is at (read once from the migration scripts)."""
    return frozenset(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())


def at_head(connection: Connection) -> bool:
    """Whether the database behind ``connection`` is at the latest migration (a readiness
    check: one small read on a connection already open)."""
    return set(MigrationContext.configure(connection).get_current_heads()) == heads()
