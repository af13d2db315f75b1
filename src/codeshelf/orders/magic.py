"""The sandbox's documented magic values and its synthetic codes (pure functions).

A sandbox order whose ``client_order_id`` starts with one of these prefixes rehearses a path
that live orders take only rarely:

- ``test_fail``: the order is accepted and fails at once (``order.failed``); nothing is charged.
- ``test_backorder``: the order waits for stock (money held) until the partner calls
  ``POST /api/v1/sandbox/restock`` or its backorder deadline passes.
- ``test_review``: the order is held for manual review until the partner decides it with
  ``POST /api/v1/sandbox/orders/{id}/review``.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum


class Outcome(StrEnum):
    FAIL = "fail"
    BACKORDER = "backorder"
    REVIEW = "review"


MAGIC_PREFIXES = {
    "test_fail": Outcome.FAIL,
    "test_backorder": Outcome.BACKORDER,
    "test_review": Outcome.REVIEW,
}
TEST_CODE_PREFIX = "TEST-"
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def forced_outcome(client_order_id: str | None) -> Outcome | None:
    """The path a sandbox order's ``client_order_id`` asks for, if any."""
    if client_order_id is None:
        return None
    for prefix, outcome in MAGIC_PREFIXES.items():
        if client_order_id.startswith(prefix):
            return outcome
    return None


def synthetic_code(order_public_id: str, item_id: int, index: int) -> str:
    """A test code, the same on every fetch, marked so it can never pass for a real one."""
    digest = hashlib.sha256(f"{order_public_id}:{item_id}:{index}".encode()).digest()
    letters = "".join(_ALPHABET[byte % len(_ALPHABET)] for byte in digest[:12])
    return TEST_CODE_PREFIX + "-".join(letters[i : i + 4] for i in range(0, 12, 4))
