"""Every integrity check, once: what a wholesaler's business dies of if it ever breaks.

``check_all`` verifies the whole database (``codeshelf ledger check`` and the tests); ``check_day``
cross-checks one day's ledger, orders, deliveries and imports (``codeshelf reconcile``). Each rule
is one function, given a time window or not. This package reads every domain's tables: that is
its job, and no domain does it for another.
"""

from codeshelf.invariants.service import (
    check_all,
    check_day,
    claim_checks,
    order_checks,
    stock_checks,
    wallet_checks,
)
from codeshelf.invariants.window import Window

__all__ = [
    "Window",
    "check_all",
    "check_day",
    "claim_checks",
    "order_checks",
    "stock_checks",
    "wallet_checks",
]
