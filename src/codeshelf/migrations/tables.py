"""Every table, imported in one place for Alembic and the metadata."""

from codeshelf.applications.models import Application
from codeshelf.audit.models import AuditEvent
from codeshelf.catalog.models import PartnerPrice, Product
from codeshelf.claims.models import Claim, ClaimCode, ClaimEvidence, Remedy
from codeshelf.idempotency.models import IdempotencyRecord
from codeshelf.kit.db import Base
from codeshelf.members.models import Invitation, Member, RecoveryCode, WebSession
from codeshelf.operators.models import OperatorKey
from codeshelf.orders.models import Order, OrderItem
from codeshelf.partners.models import ApiKey, Partner
from codeshelf.stock.models import Batch, Code, ImportJob
from codeshelf.wallet.models import Account, DepositRequest, LedgerTransaction, Posting
from codeshelf.webhooks.models import Delivery, DeliveryAttempt, Event, WebhookEndpoint

__all__ = [
    "Account",
    "ApiKey",
    "Application",
    "AuditEvent",
    "Base",
    "Batch",
    "Claim",
    "ClaimCode",
    "ClaimEvidence",
    "Code",
    "Delivery",
    "DeliveryAttempt",
    "DepositRequest",
    "Event",
    "IdempotencyRecord",
    "ImportJob",
    "Invitation",
    "LedgerTransaction",
    "Member",
    "OperatorKey",
    "Order",
    "OrderItem",
    "Partner",
    "PartnerPrice",
    "Posting",
    "Product",
    "RecoveryCode",
    "Remedy",
    "WebSession",
    "WebhookEndpoint",
]
