"""Every table, imported in one place for Alembic and the metadata."""

from codeshelf.audit.models import AuditEvent
from codeshelf.catalog.models import PartnerPrice, Product
from codeshelf.db import Base
from codeshelf.orders.models import IdempotencyRecord, Order, OrderItem
from codeshelf.partners.models import ApiKey, Partner
from codeshelf.stock.models import Batch, Code
from codeshelf.wallet.models import Account, LedgerTransaction, Posting

__all__ = [
    "Account",
    "ApiKey",
    "AuditEvent",
    "Base",
    "Batch",
    "Code",
    "IdempotencyRecord",
    "LedgerTransaction",
    "Order",
    "OrderItem",
    "Partner",
    "PartnerPrice",
    "Posting",
    "Product",
]
