"""The raw floor of a stock import: the least work any import of the same file must do.

One process, sequential: read the codes file, HMAC-fingerprint and AES-GCM-seal each code with
codeshelf's own ``Vault``, and store the rows in one transaction into ``floor_codes``, a scratch
table shaped exactly like ``codes`` (its columns, defaults, CHECK constraints, foreign keys and
indexes, copied from the migrated database itself). PostgreSQL: binary COPY in chunks; SQLite:
``executemany`` in chunks (SQLite has no COPY; it is what an import there cannot beat). No
parsing, no duplicate checks, no report: what ``codeshelf stock import`` does beyond this is its
cost above the floor.

``python -m bench.floor setup|run|drop URL [CODES_FILE]``, the secret in
``CODESHELF_SECRET_KEY``; ``run`` prints ``{"codes": n}``. The benchmark times ``run`` as a child
process (wall time, peak RSS), as it times the import.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from codeshelf.kit.db import Database
from codeshelf.kit.vault import Vault

TABLE = "floor_codes"
BATCH = "bench-floor"
CHUNK = 10_000
STATE = "available"
COLUMNS = "product_id, batch_id, fingerprint, sealed, key_id, last4, state"
# The binary COPY types of COLUMNS (codes.product_id and batch_id are bigint on PostgreSQL).
COPY_TYPES = ["int8", "int8", "bytea", "bytea", "varchar", "varchar", "varchar"]


def setup(connection: Connection) -> None:
    """The scratch table, shaped like ``codes``, and a batch for its foreign key."""
    if connection.dialect.name == "postgresql":
        _setup_postgresql(connection)
    else:
        _setup_sqlite(connection)
    connection.execute(
        text(
            "INSERT INTO stock_batches (reference, product_id, code_count, imported_at) "
            "SELECT :reference, min(id), 0, CURRENT_TIMESTAMP FROM products"
        ),
        {"reference": BATCH},
    )


def _setup_postgresql(connection: Connection) -> None:
    connection.exec_driver_sql(f"CREATE TABLE {TABLE} (LIKE codes INCLUDING ALL)")
    # Its own id sequence (LIKE would share codes_id_seq), and the foreign keys LIKE leaves out.
    connection.exec_driver_sql(f"CREATE SEQUENCE {TABLE}_id_seq OWNED BY {TABLE}.id")
    connection.exec_driver_sql(
        f"ALTER TABLE {TABLE} ALTER id SET DEFAULT nextval('{TABLE}_id_seq')"
    )
    foreign_keys = connection.exec_driver_sql(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = 'codes'::regclass AND contype = 'f'"
    ).scalars()
    for definition in list(foreign_keys):
        connection.exec_driver_sql(f"ALTER TABLE {TABLE} ADD {definition}")


def _setup_sqlite(connection: Connection) -> None:
    """The table's and its indexes' own DDL, renamed."""
    statements = connection.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE tbl_name = 'codes' AND sql IS NOT NULL "
        "ORDER BY type = 'index'"
    ).scalars()
    for statement in list(statements):
        renamed = re.sub(r'(TABLE|ON) "?codes"?(\s*\()', rf"\1 {TABLE}\2", statement, count=1)
        renamed = re.sub(r'INDEX "?(\w+)"?', r"INDEX floor_\1", renamed, count=1)
        connection.exec_driver_sql(renamed)


def drop(connection: Connection) -> None:
    connection.exec_driver_sql(f"DROP TABLE IF EXISTS {TABLE}")
    connection.execute(text("DELETE FROM stock_batches WHERE reference = :r"), {"r": BATCH})


def settle(database: Database) -> None:
    """What the floor wrote is flushed before the import runs: a checkpoint."""
    statement = "PRAGMA wal_checkpoint(TRUNCATE)" if database.is_sqlite else "CHECKPOINT"
    connection = database.engine.raw_connection()  # outside any transaction (SQLite)
    try:
        connection.cursor().execute(statement)
        connection.commit()
    finally:
        connection.close()


def rows(path: Path, vault: Vault, product_id: int, batch_id: int) -> Iterator[tuple[Any, ...]]:
    key_id, fingerprint, seal = vault.key_id, vault.fingerprint, vault.seal
    with path.open("rb") as stream:
        for line in stream:
            code = line.decode().strip()
            if code:
                mark = fingerprint(code)
                yield (product_id, batch_id, mark, seal(code, mark), key_id, code[-4:], STATE)


def run(connection: Connection, path: Path, vault: Vault) -> int:
    product_id, batch_id = connection.execute(
        text("SELECT product_id, id FROM stock_batches WHERE reference = :r"), {"r": BATCH}
    ).one()
    produced = rows(path, vault, product_id, batch_id)
    store = _copy if connection.dialect.name == "postgresql" else _executemany
    count = 0
    while chunk := list(islice(produced, CHUNK)):
        store(connection, chunk)
        count += len(chunk)
    return count


def _copy(connection: Connection, chunk: list[tuple[Any, ...]]) -> None:
    driver = connection.connection.driver_connection
    assert driver is not None
    statement = f"COPY {TABLE} ({COLUMNS}) FROM STDIN (FORMAT BINARY)"
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        copy.set_types(COPY_TYPES)
        for row in chunk:
            copy.write_row(row)


def _executemany(connection: Connection, chunk: list[tuple[Any, ...]]) -> None:
    marks = ", ".join("?" * 7)
    connection.exec_driver_sql(f"INSERT INTO {TABLE} ({COLUMNS}) VALUES ({marks})", chunk)


def main(argv: list[str]) -> int:
    command, url, *rest = argv
    database = Database(url)
    try:
        with database.engine.begin() as connection:
            if command == "setup":
                setup(connection)
            elif command == "drop":
                drop(connection)
            else:
                vault = Vault(os.environ["CODESHELF_SECRET_KEY"])
                print(json.dumps({"codes": run(connection, Path(rest[0]), vault)}))
        if command == "drop":
            settle(database)
    finally:
        database.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
