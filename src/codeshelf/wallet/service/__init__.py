"""The wallet: a double-entry ledger in integer minor units.

Each partner has one wallet account per currency. A deposit moves money from the currency's
funding account into a wallet; an order debit moves it from the wallet to sales; a pending
order's total is held (wallet -> held) until it is delivered (held -> sales) or fails (held ->
wallet). A deposit above its currency's approval threshold waits for a second person
(``deposits``: four eyes). Doors call these names from here.
"""

from codeshelf.wallet.service.accounts import (
    Balances,
    InsufficientFundsError,
    account,
    all_balances,
    all_balances_async,
    balances,
    balances_of_partners,
    credit_limits,
    low_balance_alerts,
    set_low_balance_alert,
    system_account,
)
from codeshelf.wallet.service.deposits import (
    DepositDecidedError,
    DepositOutcome,
    DepositRequestNotFoundError,
    FourEyesError,
    RequestedDeposit,
    approve_deposit,
    ask_deposit,
    decline_deposit,
    deposit_requests,
    get_deposit_request,
    needs_second_person,
    pending_deposits,
)
from codeshelf.wallet.service.moves import (
    DepositConflictError,
    DepositResult,
    HoldMismatchError,
    capture_hold,
    debit_for_order,
    deposit,
    hold_for_order,
    refund,
    release_hold,
)
from codeshelf.wallet.service.statements import (
    FIGURES,
    BalanceBreak,
    CurrencyFigures,
    LedgerEntry,
    balance_breaks,
    day_figures,
    ledger_entries,
    orders_moved,
    spend_per_day,
)

__all__ = [
    "FIGURES",
    "BalanceBreak",
    "Balances",
    "CurrencyFigures",
    "DepositConflictError",
    "DepositDecidedError",
    "DepositOutcome",
    "DepositRequestNotFoundError",
    "DepositResult",
    "FourEyesError",
    "HoldMismatchError",
    "InsufficientFundsError",
    "LedgerEntry",
    "RequestedDeposit",
    "account",
    "all_balances",
    "all_balances_async",
    "approve_deposit",
    "ask_deposit",
    "balance_breaks",
    "balances",
    "balances_of_partners",
    "capture_hold",
    "credit_limits",
    "day_figures",
    "debit_for_order",
    "decline_deposit",
    "deposit",
    "deposit_requests",
    "get_deposit_request",
    "hold_for_order",
    "ledger_entries",
    "low_balance_alerts",
    "needs_second_person",
    "orders_moved",
    "pending_deposits",
    "refund",
    "release_hold",
    "set_low_balance_alert",
    "spend_per_day",
    "system_account",
]
