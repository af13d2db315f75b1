"""partner portal members: members with roles, invitations, recovery codes, web sessions;
an API key's last use

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import codeshelf.kit.db

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(
            sa.Column("last_used_at", codeshelf.kit.db.UTCDateTime(timezone=True), nullable=True)
        )
    op.create_table(
        "member_invitations",
        sa.Column("id", BIGINT, nullable=False),
        sa.Column("partner_id", BIGINT, nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("invited_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", codeshelf.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", codeshelf.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", codeshelf.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", codeshelf.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("pending_password_hash", sa.String(length=200), nullable=True),
        sa.Column("pending_totp_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("pending_totp_key_id", sa.String(length=16), nullable=True),
        sa.CheckConstraint(
            "role IN ('owner', 'admin', 'buyer', 'support', 'finance', 'developer')",
            name=op.f("ck_member_invitations_role"),
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name=op.f("fk_member_invitations_partner_id_partners")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_member_invitations")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_member_invitations_token_hash")),
    )
    op.create_index(
        op.f("ix_member_invitations_partner_id"), "member_invitations", ["partner_id"], unique=False
    )
    op.create_table(
        "members",
        sa.Column("id", BIGINT, nullable=False),
        sa.Column("public_id", sa.String(length=32), nullable=False),
        sa.Column("partner_id", BIGINT, nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("totp_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("totp_key_id", sa.String(length=16), nullable=False),
        sa.Column("totp_last_step", BIGINT, nullable=False),
        sa.Column("failed_signins", BIGINT, nullable=False),
        sa.Column("locked_until", codeshelf.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", codeshelf.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("removed_at", codeshelf.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "role IN ('owner', 'admin', 'buyer', 'support', 'finance', 'developer')",
            name=op.f("ck_members_role"),
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name=op.f("fk_members_partner_id_partners")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_members")),
        sa.UniqueConstraint("email", name="uq_members_email"),
        sa.UniqueConstraint("public_id", name=op.f("uq_members_public_id")),
    )
    op.create_index(op.f("ix_members_partner_id"), "members", ["partner_id"], unique=False)
    op.create_table(
        "member_recovery_codes",
        sa.Column("id", BIGINT, nullable=False),
        sa.Column("member_id", BIGINT, nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("used_at", codeshelf.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_member_recovery_codes_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_member_recovery_codes")),
    )
    op.create_index(
        op.f("ix_member_recovery_codes_member_id"),
        "member_recovery_codes",
        ["member_id"],
        unique=False,
    )
    op.create_table(
        "web_sessions",
        sa.Column("id", BIGINT, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("member_id", BIGINT, nullable=False),
        sa.Column("created_at", codeshelf.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", codeshelf.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("verified_at", codeshelf.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ended_at", codeshelf.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_web_sessions_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_web_sessions_token_hash")),
    )
    op.create_index("ix_web_sessions_member_id", "web_sessions", ["member_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("last_used_at")
    op.drop_index("ix_web_sessions_member_id", table_name="web_sessions")
    op.drop_table("web_sessions")
    op.drop_index(op.f("ix_member_recovery_codes_member_id"), table_name="member_recovery_codes")
    op.drop_table("member_recovery_codes")
    op.drop_index(op.f("ix_members_partner_id"), table_name="members")
    op.drop_table("members")
    op.drop_index(op.f("ix_member_invitations_partner_id"), table_name="member_invitations")
    op.drop_table("member_invitations")
