"""Database engines, sessions and shared column types.

SQLite is the embedded default; PostgreSQL is for production. On SQLite every write transaction
starts with ``BEGIN IMMEDIATE`` so concurrent writers queue up instead of failing on a lock
upgrade; read-only work uses a second engine with ordinary deferred transactions, which WAL mode
lets run beside a writer.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Date,
    DateTime,
    Engine,
    Integer,
    MetaData,
    Table,
    create_engine,
    event,
    func,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from codeshelf.kit.reads import AsyncReads

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    # 64-bit integers everywhere (money in minor units outgrows 32 bits). SQLite's INTEGER is
    # already 64-bit, and only "INTEGER PRIMARY KEY" auto-increments there.
    type_annotation_map = {int: BigInteger().with_variant(Integer, "sqlite")}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on both databases (SQLite would hand back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use timezone-aware UTC")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def table_of(model: type[Base]) -> Table:
    """A model's Core table, for plain inserts and updates on hot paths."""
    return cast(Table, model.__table__)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def make_engine(url: str, *, immediate: bool = True) -> Engine:
    """An engine for ``url``; on SQLite, ``immediate`` write transactions (BEGIN IMMEDIATE)."""
    if not is_sqlite(url):
        # No pre-ping: it would add a round trip to every request; connections are recycled
        # instead, and a dead one fails its request (which a client retries idempotently).
        return create_engine(url, pool_size=20, max_overflow=20, pool_recycle=1800)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 60})

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=60000")
        # 64 MiB of page cache: the fingerprint index of a million codes stays in memory.
        cursor.execute("PRAGMA cache_size=-65536")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _sqlite_file(engine: Engine) -> str | None:
    database = engine.url.database
    return None if not database or database == ":memory:" else database


class Database:
    """The engines and session factories of one database URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = is_sqlite(url)
        self.engine = make_engine(url, immediate=True)
        self.read_engine = make_engine(url, immediate=False) if self.is_sqlite else self.engine
        self._writer = sessionmaker(self.engine, expire_on_commit=False)
        self._reader = sessionmaker(self.read_engine, expire_on_commit=False)
        self.owns_connections = True
        # Reads from the event loop: PostgreSQL's async pool; on SQLite a sqlite3 connection of
        # their own (a session only for a database without a file).
        file = _sqlite_file(self.engine) if self.is_sqlite else None
        sessions = self._reader if self.is_sqlite and file is None else None
        self.reads = AsyncReads(self.engine, sessions, file)

    @classmethod
    def within(cls, connection: Connection) -> Database:
        """Sessions that all run inside ``connection``'s open transaction, each in a savepoint
        of its own: what a session commits is released to that transaction, what it rolls back
        is undone, and nothing is committed until the caller commits (or, as the test suite
        does, rolls everything back). One connection serves one thread at a time."""
        database = cls.__new__(cls)
        database.url = connection.engine.url.render_as_string(hide_password=False)
        database.is_sqlite = connection.dialect.name == "sqlite"
        database.engine = database.read_engine = connection.engine
        database._writer = database._reader = sessionmaker(
            bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
        )
        database.owns_connections = False
        database.reads = AsyncReads(connection.engine, database._reader)
        return database

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A write transaction: committed on success, rolled back on any exception."""
        with self._writer() as session, session.begin():
            yield session

    @contextmanager
    def statement(self) -> Iterator[Connection]:
        """A connection for one statement that is a transaction of its own: in autocommit on
        PostgreSQL, which saves the BEGIN and COMMIT round trips; in a write transaction on
        SQLite, or on a database made ``within`` another transaction."""
        if self.is_sqlite or not self.owns_connections:
            with self.session() as session:
                yield session.connection()
            return
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            yield conn

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        with self._reader() as session, session.begin():
            yield session

    def dispose(self) -> None:
        """Close the engines' connections (a database made ``within`` a connection has none
        of its own)."""
        if not self.owns_connections:
            return
        self.reads.close()
        self.engine.dispose()
        if self.read_engine is not self.engine:
            self.read_engine.dispose()


def one_of(column: str, values: Iterable[str]) -> str:
    """A CHECK constraint's text: ``state IN ('available', 'reserved')``."""
    return f"{column} IN ({', '.join(repr(str(value)) for value in values)})"


def utc_day(session: Session, column: Any) -> Any:
    """A timestamp column's UTC calendar day, as the database computes it (for GROUP BY)."""
    if session.get_bind().dialect.name == "postgresql":
        return sql_cast(func.timezone("UTC", column), Date)
    return func.date(column)


def as_day(value: object) -> date:
    """A ``utc_day`` result as a date (SQLite answers text)."""
    return value if isinstance(value, date) else date.fromisoformat(str(value))
