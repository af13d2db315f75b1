"""The entry points: the whole database (by area, or all of it), and one day."""

from __future__ import annotations

from sqlalchemy.orm import Session

from codeshelf.invariants import claims, ledger, stock
from codeshelf.invariants.window import Window


def wallet_checks(session: Session) -> list[str]:
    """Money is conserved: every transaction balanced, every partner account right."""
    return ledger.unbalanced(session) + ledger.accounts(session)


def stock_checks(session: Session, items: list[stock.ItemCodes] | None = None) -> list[str]:
    """No code is lost: batches hold what was imported, states are known, items whole."""
    rows = stock.codes_per_item(session) if items is None else items
    return stock.batch_counts(session) + stock.code_states(session) + stock.item_quantities(rows)


def order_checks(session: Session, items: list[stock.ItemCodes] | None = None) -> list[str]:
    """Each order's money and codes match its status; promises match waiting backorders."""
    rows = stock.codes_per_item(session) if items is None else items
    return ledger.order_money(session) + stock.delivered_quantities(rows) + stock.promises(session)


def claim_checks(session: Session) -> list[str]:
    """Refunds are owed and exact; remedied codes are out of sale; one open claim per code."""
    return ledger.refunds(session) + claims.remedied_codes(session) + claims.open_claims(session)


def check_all(session: Session) -> list[str]:
    """Every violation of the platform's invariants, as sentences (empty: all hold)."""
    items = stock.codes_per_item(session)
    return (
        wallet_checks(session)
        + stock_checks(session, items)
        + order_checks(session, items)
        + claim_checks(session)
    )


def check_day(session: Session, window: Window) -> list[str]:
    """The day's ledger against its orders, delivered codes and imported stock."""
    return (
        ledger.unbalanced(session, window)
        + ledger.payments_of_the_day(session, window)
        + ledger.deliveries_of_the_day(session, window)
        + stock.deliveries_of_the_day(session, window)
        + stock.batch_counts(session, window)
    )
