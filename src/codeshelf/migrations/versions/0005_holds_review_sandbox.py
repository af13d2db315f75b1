"""backorders and manual review (ledger holds), low-balance alerts, sandbox partners

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import codeshelf.kit.db

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("ledger_accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("low_balance_minor", BIGINT, nullable=True))
        batch_op.drop_constraint(op.f("ck_ledger_accounts_kind"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_ledger_accounts_kind"), "kind IN ('wallet', 'funding', 'sales', 'held')"
        )
        batch_op.create_check_constraint(
            op.f("ck_ledger_accounts_held_not_negative"), "kind != 'held' OR balance_minor >= 0"
        )

    with op.batch_alter_table("ledger_transactions", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_ledger_transactions_kind"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_ledger_transactions_kind"),
            "kind IN ('deposit', 'order', 'refund', 'hold', 'release')",
        )
        batch_op.drop_constraint(
            op.f("ck_ledger_transactions_order_debit_has_order"), type_="check"
        )
        batch_op.create_check_constraint(
            op.f("ck_ledger_transactions_order_debit_has_order"),
            "kind NOT IN ('order', 'hold', 'release') OR order_id IS NOT NULL",
        )

    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("allow_backorder", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(
            sa.Column("backorder_until", codeshelf.kit.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("hold_reason", sa.String(length=16), nullable=True))
        batch_op.add_column(
            sa.Column("waiting_since", codeshelf.kit.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("review_reasons", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("failure_reason", sa.String(length=32), nullable=True))
        batch_op.create_index(batch_op.f("ix_orders_hold_reason"), ["hold_reason"], unique=False)
        batch_op.create_check_constraint(
            op.f("ck_orders_hold_reason"),
            "hold_reason IS NULL OR (hold_reason IN ('review', 'stock') AND status = 'pending')",
        )

    with op.batch_alter_table("partners", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sandbox_of_id", BIGINT, nullable=True))
        batch_op.add_column(sa.Column("review_quantity_over", BIGINT, nullable=True))
        batch_op.add_column(sa.Column("review_amount_over_minor", BIGINT, nullable=True))
        batch_op.add_column(sa.Column("review_amount_currency", sa.String(length=3), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f("uq_partners_sandbox_of_id"), ["sandbox_of_id"]
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_partners_sandbox_of_id_partners"), "partners", ["sandbox_of_id"], ["id"]
        )

    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.add_column(sa.Column("backordered", BIGINT, server_default="0", nullable=False))
        batch_op.create_check_constraint(
            op.f("ck_products_backordered_not_negative"), "backordered >= 0"
        )


def downgrade() -> None:
    held = op.get_bind().execute(
        sa.text("SELECT count(*) FROM ledger_transactions WHERE kind IN ('hold', 'release')")
    )
    if held.scalar():
        raise RuntimeError(
            "0005 cannot be downgraded once orders have held money: the ledger's holds and "
            "releases have no place in the 0004 schema"
        )
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_products_backordered_not_negative"), type_="check")
        batch_op.drop_column("backordered")

    with op.batch_alter_table("partners", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_partners_sandbox_of_id_partners"), type_="foreignkey"
        )
        batch_op.drop_constraint(batch_op.f("uq_partners_sandbox_of_id"), type_="unique")
        batch_op.drop_column("review_amount_currency")
        batch_op.drop_column("review_amount_over_minor")
        batch_op.drop_column("review_quantity_over")
        batch_op.drop_column("sandbox_of_id")

    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_orders_hold_reason"), type_="check")
        batch_op.drop_index(batch_op.f("ix_orders_hold_reason"))
        batch_op.drop_column("failure_reason")
        batch_op.drop_column("review_reasons")
        batch_op.drop_column("waiting_since")
        batch_op.drop_column("hold_reason")
        batch_op.drop_column("backorder_until")
        batch_op.drop_column("allow_backorder")

    with op.batch_alter_table("ledger_transactions", schema=None) as batch_op:
        batch_op.drop_constraint(
            op.f("ck_ledger_transactions_order_debit_has_order"), type_="check"
        )
        batch_op.create_check_constraint(
            op.f("ck_ledger_transactions_order_debit_has_order"),
            "kind != 'order' OR order_id IS NOT NULL",
        )
        batch_op.drop_constraint(op.f("ck_ledger_transactions_kind"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_ledger_transactions_kind"), "kind IN ('deposit', 'order', 'refund')"
        )

    with op.batch_alter_table("ledger_accounts", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_ledger_accounts_held_not_negative"), type_="check")
        batch_op.drop_constraint(op.f("ck_ledger_accounts_kind"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_ledger_accounts_kind"), "kind IN ('wallet', 'funding', 'sales')"
        )
        batch_op.drop_column("low_balance_minor")
