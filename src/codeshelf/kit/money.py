"""Money as integer minor units with an ISO 4217 currency; never floats.

Babel knows each currency's number of decimal places (JPY 0, USD 2, KWD 3).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from babel.core import get_global
from babel.numbers import get_currency_precision

# Far above any real order or balance, far below 64-bit overflow.
MAX_MINOR_UNITS = 10**15


class InvalidMoneyError(ValueError):
    """An amount or currency that cannot be represented exactly."""


def _known_currencies() -> frozenset[str]:
    return frozenset(get_global("currency_fractions").keys()) | frozenset(
        code for code in get_global("all_currencies")
    )


_CURRENCIES = _known_currencies()


def normalize_currency(code: str) -> str:
    currency = code.strip().upper()
    if len(currency) != 3 or not currency.isalpha() or currency not in _CURRENCIES:
        raise InvalidMoneyError(f"unknown currency {code!r}")
    return currency


def exponent(currency: str) -> int:
    return int(get_currency_precision(currency))


@dataclass(frozen=True, slots=True)
class Money:
    minor: int
    currency: str

    @classmethod
    def parse(cls, amount: str | int | Decimal, currency: str) -> Money:
        """Parse a decimal amount ("46.50") exactly; refuse more decimals than the currency has."""
        currency = normalize_currency(currency)
        if isinstance(amount, float):
            raise InvalidMoneyError("amounts must be decimal strings, not floats")
        try:
            value = Decimal(str(amount).strip())
        except InvalidOperation as exc:
            raise InvalidMoneyError(f"{amount!r} is not a decimal amount") from exc
        if not value.is_finite():
            raise InvalidMoneyError(f"{amount!r} is not a finite amount")
        if abs(value) > MAX_MINOR_UNITS:  # before scaling, which overflows at 1e999999
            raise InvalidMoneyError(f"{amount} {currency} is beyond the largest amount handled")
        scaled = value.scaleb(exponent(currency))
        if scaled != scaled.to_integral_value():
            raise InvalidMoneyError(
                f"{amount} has more decimal places than {currency} allows ({exponent(currency)})"
            )
        if abs(scaled) > MAX_MINOR_UNITS:
            raise InvalidMoneyError(f"{amount} {currency} is beyond the largest amount handled")
        return cls(int(scaled), currency)

    @property
    def amount(self) -> str:
        """The exact decimal string, with the currency's number of places ("46.50")."""
        places = exponent(self.currency)
        value = Decimal(self.minor).scaleb(-places)
        return f"{value:.{places}f}"

    def as_json(self) -> dict[str, str]:
        return {"amount": self.amount, "currency": self.currency}

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"


def parse_per_currency(raw: str) -> dict[str, Money]:
    """``"USD 5000.00,EUR 5000.00"`` -> one amount per currency (``"5000.00 USD"`` reads the
    same). Empty: none. Raises InvalidMoneyError naming the bad entry: a currency twice, a
    negative amount, or one that ``Money.parse`` refuses."""
    found: dict[str, Money] = {}
    for part in raw.split(","):
        words = part.split()
        if not words:
            continue
        if len(words) != 2:
            raise InvalidMoneyError(
                f"{part.strip()!r} is not a currency and an amount, e.g. USD 5000.00"
            )
        currency, amount = words if words[0].isalpha() else reversed(words)
        try:
            money = Money.parse(amount, currency)
        except InvalidMoneyError as exc:
            raise InvalidMoneyError(f"{part.strip()!r}: {exc}") from None
        if money.minor < 0:
            raise InvalidMoneyError(f"{part.strip()!r}: the amount may not be negative")
        if money.currency in found:
            raise InvalidMoneyError(f"{money.currency} is named twice")
        found[money.currency] = money
    return found
