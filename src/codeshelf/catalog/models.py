from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from codeshelf.kit.clock import utcnow
from codeshelf.kit.db import Base, UTCDateTime


class Product(Base):
    """A sellable code type: one platform, region and denomination, with a default price."""

    __tablename__ = "products"
    __table_args__ = (
        UniqueConstraint("platform", "region", "face_value_minor", "face_currency"),
        CheckConstraint("face_value_minor > 0", name="face_value_positive"),
        CheckConstraint("price_minor > 0", name="price_positive"),
        CheckConstraint("backordered >= 0", name="backordered_not_negative"),
        CheckConstraint("set_aside >= 0 AND set_aside <= backordered", name="set_aside_in_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    platform: Mapped[str] = mapped_column(String(16))
    region: Mapped[str] = mapped_column(String(8))
    face_value_minor: Mapped[int]
    face_currency: Mapped[str] = mapped_column(String(3))
    price_minor: Mapped[int]
    price_currency: Mapped[str] = mapped_column(String(3))
    # Codes waiting backorders ask for, and those in stock set aside for them (never more):
    # new orders take what is in stock less what is set aside (stock.service.promises).
    backordered: Mapped[int] = mapped_column(default=0, server_default="0")
    set_aside: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # A retired product is no longer sold or listed; its past orders and codes stay as they are.
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PartnerPrice(Base):
    """A partner-specific price that overrides the product's default price."""

    __tablename__ = "partner_prices"
    __table_args__ = (
        UniqueConstraint("partner_id", "product_id"),
        CheckConstraint("price_minor > 0", name="price_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    price_minor: Mapped[int]
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
