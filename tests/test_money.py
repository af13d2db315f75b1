"""Money: integer minor units, exact decimal strings, the currency's own precision."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from codeshelf.kit.money import InvalidMoneyError, Money


@pytest.mark.parametrize(
    ("amount", "currency", "minor", "text"),
    [
        ("46.50", "USD", 4650, "46.50"),
        ("46.5", "usd", 4650, "46.50"),
        (50, "USD", 5000, "50.00"),
        ("1000", "JPY", 1000, "1000"),
        ("1.234", "KWD", 1234, "1.234"),
        ("0.01", "USD", 1, "0.01"),
    ],
)
def test_parse_and_format(amount: str | int, currency: str, minor: int, text: str) -> None:
    money = Money.parse(amount, currency)
    assert money.minor == minor
    assert money.amount == text


@pytest.mark.parametrize(
    ("amount", "currency"),
    [
        ("1.234", "USD"),
        ("1.5", "JPY"),
        ("abc", "USD"),
        ("NaN", "USD"),
        ("1", "XXQ"),
        ("1", "US"),
        ("1e999999", "USD"),  # past what the decimal context can scale: refused, not a crash
        ("-1e999999", "KWD"),
    ],
)
def test_inexact_or_unknown_is_refused(amount: str, currency: str) -> None:
    with pytest.raises(InvalidMoneyError):
        Money.parse(amount, currency)


def test_floats_are_refused() -> None:
    with pytest.raises(InvalidMoneyError):
        Money.parse(46.5, "USD")  # type: ignore[arg-type]


@given(st.integers(-(10**15), 10**15), st.sampled_from(["USD", "JPY", "KWD", "EUR", "TRY"]))
def test_formatting_round_trips(minor: int, currency: str) -> None:
    money = Money(minor, currency)
    assert Money.parse(money.amount, currency) == money
    assert Decimal(money.amount) == Decimal(minor).scaleb(-{"JPY": 0, "KWD": 3}.get(currency, 2))
