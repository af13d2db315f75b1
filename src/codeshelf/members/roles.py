"""Who may do what: the partner portal's permission table and the operator console's, as data.

Least privilege: each role gets what its job needs. The README prints both tables; every door
asks ``can(role, permission)`` or ``staff_can(role, permission)`` and nothing else.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    BUYER = "buyer"
    SUPPORT = "support"
    FINANCE = "finance"
    DEVELOPER = "developer"


class Permission(StrEnum):
    VIEW_ORDERS = "view_orders"  # orders and their status, codes masked
    PLACE_ORDERS = "place_orders"
    REVEAL_CODES = "reveal_codes"  # every code of an order, and its CSV
    REVEAL_CLAIMED_CODE = "reveal_claimed_code"  # one code, while filing a claim on it
    CLAIMS = "claims"  # file and follow claims
    FINANCE = "finance"  # balance, statement, reconciliation, price list, CSV exports
    DEVELOPER = "developer"  # API keys, webhook endpoints, delivery log, replay, sandbox
    TEAM = "team"  # invite, change roles (but owners'), remove members
    OWNERS = "owners"  # make or unmake owners
    ACTIVITY = "activity"  # the partner's own audit trail


_ALL = frozenset(Permission)

PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.OWNER: _ALL,
    Role.ADMIN: _ALL - {Permission.OWNERS},
    Role.BUYER: frozenset(
        {Permission.VIEW_ORDERS, Permission.PLACE_ORDERS, Permission.REVEAL_CODES}
    ),
    Role.SUPPORT: frozenset(
        {Permission.VIEW_ORDERS, Permission.CLAIMS, Permission.REVEAL_CLAIMED_CODE}
    ),
    Role.FINANCE: frozenset({Permission.FINANCE}),
    Role.DEVELOPER: frozenset({Permission.DEVELOPER}),
}


def can(role: str, permission: Permission) -> bool:
    """Whether a member with ``role`` may do ``permission`` (an unknown role may do nothing)."""
    try:
        return permission in PERMISSIONS[Role(role)]
    except ValueError:
        return False


class StaffRole(StrEnum):
    """The wholesaler's own staff: a member with no partner signs in to the console (/ops/)."""

    ADMIN = "admin"  # everything, and the staff itself
    SUPPORT = "support"  # claims, order review
    FINANCE = "finance"  # wallets, deposits, reconciliation, partner prices
    STOCK = "stock"  # products, batches, imports, quarantine


class StaffPermission(StrEnum):
    OVERVIEW = "overview"  # what needs a person now; every role sees it
    CLAIMS = "claims"  # the queue, the claim screen, every decision on a claim
    REVIEW_ORDERS = "review_orders"  # orders held for review: approve or reject
    STOCK = "stock"  # products, default prices, batches, imports, quarantine and release
    PARTNERS = "partners"  # partners' details (read), webhooks, access requests
    MANAGE_PARTNERS = "manage_partners"  # create partners, invite owners, approve applications
    FINANCE = "finance"  # deposits (and their approval), partner prices, reconciliation
    AUDIT = "audit"  # the whole audit log
    STAFF = "staff"  # invite, change roles of and remove staff members


STAFF_PERMISSIONS: dict[StaffRole, frozenset[StaffPermission]] = {
    StaffRole.ADMIN: frozenset(StaffPermission),
    StaffRole.SUPPORT: frozenset(
        {
            StaffPermission.OVERVIEW,
            StaffPermission.CLAIMS,
            StaffPermission.REVIEW_ORDERS,
            StaffPermission.PARTNERS,
        }
    ),
    StaffRole.FINANCE: frozenset(
        {StaffPermission.OVERVIEW, StaffPermission.FINANCE, StaffPermission.PARTNERS}
    ),
    StaffRole.STOCK: frozenset({StaffPermission.OVERVIEW, StaffPermission.STOCK}),
}


def staff_can(role: str, permission: StaffPermission) -> bool:
    """Whether a staff member with ``role`` may do ``permission``."""
    try:
        return permission in STAFF_PERMISSIONS[StaffRole(role)]
    except ValueError:
        return False


ALL_ROLES = sorted({*Role, *StaffRole})
