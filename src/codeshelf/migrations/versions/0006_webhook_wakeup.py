"""wake the webhook worker on commit: NOTIFY codeshelf_webhooks when deliveries are queued

A statement-level trigger on ``webhook_deliveries`` (PostgreSQL only): every statement that
inserts deliveries (an order's events, a claim update, a replay) issues one ``NOTIFY``, which
PostgreSQL delivers to the listening workers when, and only if, the transaction commits. SQLite
has no trigger: its worker polls.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The channel the worker listens on (codeshelf.webhooks.delivery.CHANNEL).
CHANNEL = "codeshelf_webhooks"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        f"""
        CREATE FUNCTION codeshelf_webhooks_notify() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{CHANNEL}', '');
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER webhook_deliveries_notify AFTER INSERT ON webhook_deliveries "
        "FOR EACH STATEMENT EXECUTE FUNCTION codeshelf_webhooks_notify()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER webhook_deliveries_notify ON webhook_deliveries")
    op.execute("DROP FUNCTION codeshelf_webhooks_notify()")
