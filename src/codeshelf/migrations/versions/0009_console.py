"""operator console: staff members (members with no partner), per-code claim decisions,
retired products, import jobs, four-eyes deposit requests, access applications

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import codeshelf.kit.db

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
PARTNER_ROLES = "('owner', 'admin', 'buyer', 'support', 'finance', 'developer')"
STAFF_ROLES = "('admin', 'support', 'finance', 'stock')"
ALL_ROLES = "('admin', 'buyer', 'developer', 'finance', 'owner', 'stock', 'support')"
OPEN_APPLICATION = "status IN ('submitted', 'under_review')"


def _people(table: str) -> None:
    """Members and invitations may belong to no partner (staff), each with its kind of role."""
    with op.batch_alter_table(table) as batch:
        batch.alter_column("partner_id", existing_type=BIGINT, nullable=True)
        batch.drop_constraint(op.f(f"ck_{table}_role"), type_="check")
        batch.create_check_constraint(op.f(f"ck_{table}_role"), f"role IN {ALL_ROLES}")
        batch.create_check_constraint(
            op.f(f"ck_{table}_partner_role"), f"partner_id IS NULL OR role IN {PARTNER_ROLES}"
        )
        batch.create_check_constraint(
            op.f(f"ck_{table}_staff_role"), f"partner_id IS NOT NULL OR role IN {STAFF_ROLES}"
        )


def upgrade() -> None:
    _people("members")
    _people("member_invitations")
    with op.batch_alter_table("claim_codes") as batch:
        batch.add_column(sa.Column("decision", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("decision_rule", sa.String(length=64), nullable=True))
        batch.add_column(
            sa.Column("decided_at", codeshelf.kit.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch.create_check_constraint(
            op.f("ck_claim_codes_decision"),
            "decision IS NULL OR decision IN ('approved', 'rejected')",
        )
    with op.batch_alter_table("products") as batch:
        batch.add_column(
            sa.Column("retired_at", codeshelf.kit.db.UTCDateTime(timezone=True), nullable=True)
        )
    op.create_table(
        "access_applications",
        sa.Column("id", BIGINT, nullable=False),
        sa.Column("public_id", sa.String(length=32), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("company", sa.String(length=200), nullable=False),
        sa.Column("website", sa.String(length=200), nullable=True),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("contact_name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("buyer_type", sa.String(length=24), nullable=False),
        sa.Column("monthly_volume_minor", BIGINT, nullable=False),
        sa.Column("volume_currency", sa.String(length=3), nullable=False),
        sa.Column("regions", sa.String(length=200), nullable=False),
        sa.Column("payment_preference", sa.String(length=24), nullable=False),
        sa.Column("integration", sa.String(length=16), nullable=False),
        sa.Column("use_case", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("reviewed_by", sa.String(length=64), nullable=True),
        sa.Column("reviewed_at", codeshelf.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("partner_id", BIGINT, nullable=True),
        sa.Column("created_at", codeshelf.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", codeshelf.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "buyer_type IN ('reseller', 'marketplace', 'gaming_platform', 'rewards', 'other')",
            name=op.f("ck_access_applications_buyer_type"),
        ),
        sa.CheckConstraint(
            "integration IN ('api', 'manual')", name=op.f("ck_access_applications_integration")
        ),
        sa.CheckConstraint(
            "payment_preference IN ('bank_transfer', 'card', 'other')",
            name=op.f("ck_access_applications_payment"),
        ),
        sa.CheckConstraint(
            "status IN ('submitted', 'under_review', 'approved', 'declined')",
            name=op.f("ck_access_applications_status"),
        ),
        sa.CheckConstraint(
            "monthly_volume_minor >= 0", name=op.f("ck_access_applications_volume_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name=op.f("fk_access_applications_partner_id_partners")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_applications")),
        sa.UniqueConstraint("public_id", name=op.f("uq_access_applications_public_id")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_access_applications_token_hash")),
    )
    op.create_index(
        op.f("ix_access_applications_email"), "access_applications", ["email"], unique=False
    )
    op.create_table(
        "stock_import_jobs",
        sa.Column("id", BIGINT, nullable=False),
        sa.Column("public_id", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("product_id", BIGINT, nullable=False),
        sa.Column("reference", sa.String(length=128), nullable=False),
        sa.Column("supplier", sa.String(length=200), nullable=True),
        sa.Column("unit_cost_minor", BIGINT, nullable=True),
        sa.Column("unit_cost_currency", sa.String(length=3), nullable=True),
        sa.Column("csv_format", sa.Boolean(), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("size_bytes", BIGINT, nullable=False),
        sa.Column("bytes_done", BIGINT, nullable=False),
        sa.Column("lines_done", BIGINT, nullable=False),
        sa.Column("report", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", codeshelf.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", codeshelf.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", codeshelf.kit.db.UTCDateTime(timezone=True), nullable=True),
        # When the running worker last wrote progress (a job silent too long is requeued), and
        # how often a worker started it (a file that keeps stopping one fails).
        sa.Column("heartbeat_at", codeshelf.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("attempts", BIGINT, server_default="0", nullable=False),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'done', 'failed')",
            name=op.f("ck_stock_import_jobs_status"),
        ),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name=op.f("fk_stock_import_jobs_product_id_products")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stock_import_jobs")),
        sa.UniqueConstraint("public_id", name=op.f("uq_stock_import_jobs_public_id")),
    )
    op.create_table(
        "deposit_requests",
        sa.Column("id", BIGINT, nullable=False),
        sa.Column("public_id", sa.String(length=32), nullable=False),
        sa.Column("partner_id", BIGINT, nullable=False),
        sa.Column("amount_minor", BIGINT, nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("reference", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("requested_by", sa.String(length=64), nullable=False),
        sa.Column("requested_at", codeshelf.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_at", codeshelf.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("transaction_id", BIGINT, nullable=True),
        sa.CheckConstraint(
            "(status = 'approved') = (transaction_id IS NOT NULL)",
            name=op.f("ck_deposit_requests_approved_has_transaction"),
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'approved', 'declined')", name=op.f("ck_deposit_requests_status")
        ),
        sa.CheckConstraint("amount_minor > 0", name=op.f("ck_deposit_requests_amount_positive")),
        sa.CheckConstraint(
            "decided_by IS NULL OR decided_by != requested_by",
            name=op.f("ck_deposit_requests_four_eyes"),
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name=op.f("fk_deposit_requests_partner_id_partners")
        ),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_deposit_requests_transaction_id_ledger_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deposit_requests")),
        sa.UniqueConstraint("public_id", name=op.f("uq_deposit_requests_public_id")),
        sa.UniqueConstraint("reference", name=op.f("uq_deposit_requests_reference")),
    )
    op.create_index(
        op.f("ix_deposit_requests_partner_id"), "deposit_requests", ["partner_id"], unique=False
    )
    op.create_index(
        "uq_access_applications_open_email",
        "access_applications",
        ["email"],
        unique=True,
        postgresql_where=sa.text(OPEN_APPLICATION),
        sqlite_where=sa.text(OPEN_APPLICATION),
    )


def downgrade() -> None:
    op.drop_index("uq_access_applications_open_email", table_name="access_applications")
    op.drop_table("access_applications")
    op.drop_table("stock_import_jobs")
    op.drop_table("deposit_requests")
    with op.batch_alter_table("products") as batch:
        batch.drop_column("retired_at")
    with op.batch_alter_table("claim_codes") as batch:
        batch.drop_constraint(op.f("ck_claim_codes_decision"), type_="check")
        batch.drop_column("decided_at")
        batch.drop_column("decision_rule")
        batch.drop_column("decision")
    for table in ("member_invitations", "members"):
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(op.f(f"ck_{table}_staff_role"), type_="check")
            batch.drop_constraint(op.f(f"ck_{table}_partner_role"), type_="check")
            batch.drop_constraint(op.f(f"ck_{table}_role"), type_="check")
            batch.create_check_constraint(op.f(f"ck_{table}_role"), f"role IN {PARTNER_ROLES}")
            batch.alter_column("partner_id", existing_type=BIGINT, nullable=False)
