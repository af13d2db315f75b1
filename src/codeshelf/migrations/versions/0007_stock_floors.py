"""stock floors: where each product's pick of available codes starts

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "stock_floors",
        sa.Column("product_id", BIGINT, nullable=False),
        sa.Column("code_id", BIGINT, nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name=op.f("fk_stock_floors_product_id_products")
        ),
        sa.PrimaryKeyConstraint("product_id", name=op.f("pk_stock_floors")),
    )


def downgrade() -> None:
    op.drop_table("stock_floors")
