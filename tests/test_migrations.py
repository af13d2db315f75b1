"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

import codeshelf.migrations.tables  # noqa: F401  (registers every table)
from codeshelf.kit import migrate
from codeshelf.kit.db import Base
from codeshelf.kit.migrate import alembic_config


def test_migrated_schema_matches_the_models(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_migrations_keep_named_checks_and_partial_indexes(database_url: str) -> None:
    """SQLite rebuilds a table to change a constraint: nothing else may be lost on the way."""
    engine = create_engine(database_url)
    try:
        schema = inspect(engine)
        checks = {check["name"] for check in schema.get_check_constraints("codes")}
        indexes = {index["name"]: index for index in schema.get_indexes("codes")}
        order_checks = {check["name"] for check in schema.get_check_constraints("orders")}
    finally:
        engine.dispose()
    assert {"ck_codes_state", "ck_codes_order_item_fits_state"} <= checks
    assert "ck_codes_delivered_iff_on_order" not in checks
    assert "ck_orders_kind" in order_checks
    assert {"ix_codes_available", "ix_codes_order_item_id", "ix_codes_batch_id"} <= set(indexes)
    where = indexes["ix_codes_available"].get("dialect_options", {})
    assert any("available" in str(value) for value in where.values()), where


def test_upgrading_a_populated_database_keeps_every_row(empty_database_url: str) -> None:
    """0003 rebuilds `codes` on SQLite and alters it on PostgreSQL; stock and orders survive."""
    command.upgrade(alembic_config(empty_database_url), "0002")
    engine = create_engine(empty_database_url)
    try:
        with engine.begin() as connection:
            for statement in SEED_0002:
                connection.execute(text(statement), {"one": b"\x01", "two": b"\x02"})
        migrate.upgrade(empty_database_url)
        with engine.connect() as connection:
            codes = connection.execute(
                text("SELECT id, state, order_item_id, last4 FROM codes ORDER BY id")
            ).all()
            kinds = connection.execute(text("SELECT kind FROM orders")).scalars().all()
    finally:
        engine.dispose()
    assert [tuple(row) for row in codes] == [
        (1, "available", None, "AAAA"),
        (2, "delivered", 1, "BBBB"),
    ]
    assert kinds == ["purchase"]


SEED_0002 = [
    "INSERT INTO products (id, sku, platform, region, face_value_minor, face_currency, "
    "price_minor, price_currency, created_at) VALUES "
    "(1, 'psn-us-50', 'psn', 'US', 5000, 'USD', 4650, 'USD', '2026-11-01 00:00:00+00')",
    "INSERT INTO partners (id, public_id, name, created_at) VALUES "
    "(1, 'ptr_1', 'Acme', '2026-11-01 00:00:00+00')",
    "INSERT INTO orders (id, public_id, partner_id, status, currency, total_minor, created_at, "
    "updated_at) VALUES (1, 'ord_1', 1, 'delivered', 'USD', 4650, '2026-11-01 00:00:00+00', "
    "'2026-11-01 00:00:00+00')",
    "INSERT INTO order_items (id, order_id, product_id, quantity, unit_price_minor) "
    "VALUES (1, 1, 1, 1, 4650)",
    "INSERT INTO stock_batches (id, reference, product_id, code_count, imported_at) "
    "VALUES (1, 'b1', 1, 2, '2026-11-01 00:00:00+00')",
    "INSERT INTO codes (id, product_id, batch_id, fingerprint, sealed, key_id, last4, state) "
    "VALUES (1, 1, 1, :one, :one, 'k', 'AAAA', 'available')",
    "INSERT INTO codes (id, product_id, batch_id, fingerprint, sealed, key_id, last4, state, "
    "order_item_id) VALUES (2, 1, 1, :two, :two, 'k', 'BBBB', 'delivered', 1)",
]


def _wake_up_objects(url: str) -> set[str]:
    """The triggers (and, on PostgreSQL, trigger functions) of 0006 found in the database."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            if connection.dialect.name == "sqlite":
                query = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
            else:
                query = (
                    "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal UNION "
                    "SELECT proname FROM pg_proc WHERE proname = 'codeshelf_webhooks_notify'"
                )
            found = {name for name in connection.execute(text(query)).scalars() if "notify" in name}
            heads = MigrationContext.configure(connection).get_current_heads()
    finally:
        engine.dispose()
    return found | {f"revision {head}" for head in heads}


def test_0006_notifies_on_postgresql_only_and_downgrades_cleanly(empty_database_url: str) -> None:
    """The wake-up trigger exists on PostgreSQL (SQLite has none); downgrading to 0005 removes
    it and its function, and upgrading again puts them back."""
    postgres = not empty_database_url.startswith("sqlite")
    notify = {"webhook_deliveries_notify", "codeshelf_webhooks_notify"} if postgres else set()
    command.upgrade(alembic_config(empty_database_url), "0006")
    assert _wake_up_objects(empty_database_url) == notify | {"revision 0006"}
    command.downgrade(alembic_config(empty_database_url), "0005")
    assert _wake_up_objects(empty_database_url) == {"revision 0005"}
    command.upgrade(alembic_config(empty_database_url), "0006")
    assert _wake_up_objects(empty_database_url) == notify | {"revision 0006"}
