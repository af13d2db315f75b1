from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from codeshelf.kit.clock import utcnow
from codeshelf.kit.db import Base, UTCDateTime, one_of


class CodeState(StrEnum):
    """Every code is in exactly one of these at any time."""

    AVAILABLE = "available"
    RESERVED = "reserved"
    DELIVERED = "delivered"
    QUARANTINED = "quarantined"  # out of sale while its batch or a claim on it is disputed
    VOIDED = "voided"  # replaced or refunded by a claim: never sold again


class Batch(Base):
    """One delivery of codes from an upstream supplier."""

    __tablename__ = "stock_batches"
    # Lets codes reference (batch, product) in one foreign key: a code's product is its batch's.
    __table_args__ = (UniqueConstraint("id", "product_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(128), unique=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    supplier: Mapped[str | None] = mapped_column(String(200))
    unit_cost_minor: Mapped[int | None]
    unit_cost_currency: Mapped[str | None] = mapped_column(String(3))
    code_count: Mapped[int] = mapped_column(default=0)
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Code(Base):
    """One code, encrypted; it is in exactly one state at any time."""

    __tablename__ = "codes"
    __table_args__ = (
        CheckConstraint(one_of("state", CodeState), name="state"),
        # One foreign key checks both batch and product (a bulk import pays for each check).
        ForeignKeyConstraint(
            ["batch_id", "product_id"], ["stock_batches.id", "stock_batches.product_id"]
        ),
        # Partial: imported codes have no order item, and an import shouldn't index them.
        Index(
            "ix_codes_order_item_id",
            "order_item_id",
            postgresql_where=text("order_item_id IS NOT NULL"),
            sqlite_where=text("order_item_id IS NOT NULL"),
        ),
        # Delivered codes are on an order; stock never is. A voided or quarantined code may be
        # either: a claimed code keeps its order as history, a pulled batch's codes have none.
        CheckConstraint(
            "(state != 'delivered' OR order_item_id IS NOT NULL)"
            " AND (state NOT IN ('available', 'reserved') OR order_item_id IS NULL)",
            name="order_item_fits_state",
        ),
        # Partial: only what can still be allocated, so delivered codes don't slow the pick.
        Index(
            "ix_codes_available",
            "product_id",
            "id",
            postgresql_where=text("state = 'available'"),
            sqlite_where=text("state = 'available'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int]
    batch_id: Mapped[int] = mapped_column(index=True)
    fingerprint: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    key_id: Mapped[str] = mapped_column(String(16))
    last4: Mapped[str] = mapped_column(String(4))
    state: Mapped[str] = mapped_column(String(16), default=CodeState.AVAILABLE)
    order_item_id: Mapped[int | None] = mapped_column(ForeignKey("order_items.id"))
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class StockFloor(Base):
    """A lower bound of a product's available codes' ids, so the pick starts where stock does.

    Every code sold leaves a dead entry at the front of PostgreSQL's partial index of available
    codes until vacuum removes it (and vacuum may skip the index for years on a large table), so
    a scan from the first id reads past every code ever sold. The pick starts at this id instead.
    It is a hint: moved up by the worker, down by an import, and a pick that comes up short
    looks again from the start, so a floor set too high can only reorder, never refuse.
    """

    __tablename__ = "stock_floors"

    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), primary_key=True)
    code_id: Mapped[int]


class ImportJobStatus(StrEnum):
    QUEUED = "queued"  # the file is on disk; the worker has not started it
    RUNNING = "running"
    DONE = "done"  # the report is written (a file with refused lines is done too)
    FAILED = "failed"  # nothing was imported; ``error`` says why


IMPORT_JOB_PREFIX = "imp"


class ImportJob(Base):
    """An import by upload: the file waits on disk and the worker imports it, writing how far it
    has read so a page can show progress, then the same report as ``codeshelf stock import``."""

    __tablename__ = "stock_import_jobs"
    __table_args__ = (CheckConstraint(one_of("status", ImportJobStatus), name="status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=ImportJobStatus.QUEUED)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    reference: Mapped[str] = mapped_column(String(128))  # the batch's, once imported
    supplier: Mapped[str | None] = mapped_column(String(200))
    unit_cost_minor: Mapped[int | None]
    unit_cost_currency: Mapped[str | None] = mapped_column(String(3))
    csv_format: Mapped[bool] = mapped_column(default=False)
    path: Mapped[str] = mapped_column(String(500))  # the uploaded file, removed once done
    size_bytes: Mapped[int]
    bytes_done: Mapped[int] = mapped_column(default=0)
    lines_done: Mapped[int] = mapped_column(default=0)
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(64))  # an actor, as in the audit log
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The running worker's last sign of life (its last progress); a job silent for too long is
    # taken to be orphaned by a crashed worker and queued again.
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
