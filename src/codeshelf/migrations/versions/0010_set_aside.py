"""backorders set aside only stock that arrives after them (products.set_aside)

Revision ID: 0010
Revises: 0009

Backorders waiting at the upgrade set nothing aside: the stock they could not fill stays on
sale, and what arrives next is set aside for them (stock.service.promises).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.add_column(sa.Column("set_aside", BIGINT, server_default="0", nullable=False))
        batch_op.create_check_constraint(
            op.f("ck_products_set_aside_in_range"), "set_aside >= 0 AND set_aside <= backordered"
        )


def downgrade() -> None:
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_products_set_aside_in_range"), type_="check")
        batch_op.drop_column("set_aside")
