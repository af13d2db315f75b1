"""Who may do what in the partner portal: the permission table, as data.

Least privilege: each role gets what its job needs. The README prints this table; every door
asks ``can(role, permission)`` and nothing else.
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
