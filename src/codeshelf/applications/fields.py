"""What an applicant may send, field by field: every rule of the access-request form.

Every field is checked and every problem reported at once (the form shows each beside its
field). Text must be printable (``str.isprintable``): control characters, Unicode direction
overrides and isolates (text that displays in another order than it is stored, the "Trojan
Source" trick), zero-width and other format characters are refused. Multi-line text (the use
case, the operator's messages) may also hold line breaks and tabs.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import TypeVar, cast
from urllib.parse import urlsplit

from babel import Locale

from codeshelf.applications.models import BuyerType, Integration, PaymentPreference
from codeshelf.kit.errors import InvalidInputError
from codeshelf.kit.money import InvalidMoneyError, Money, normalize_currency
from codeshelf.members.service.invitations import normal_email

COMPANY_MAX = 200
NAME_MAX = 200
WEBSITE_MAX = 200
USE_CASE_MIN, USE_CASE_MAX = 20, 5000
MESSAGE_MAX = 2000
MAX_REGIONS = 30


def _sort_key(name: str) -> str:
    """Åland sorts beside Albania: the name without its accents."""
    return "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))


# Babel's territories that are not a country (a union, the world, pseudo-locales).
_NOT_COUNTRIES = {"EU", "EZ", "QO", "UN", "XA", "XB", "ZZ"}
# ISO 3166-1 alpha-2 code -> English name, in the order of the names.
COUNTRIES: dict[str, str] = dict(
    sorted(
        (
            (code, str(name))
            for code, name in Locale("en").territories.items()
            if len(code) == 2 and code.isalpha() and code not in _NOT_COUNTRIES
        ),
        key=lambda pair: _sort_key(pair[1]),
    )
)
# Where codes are to be redeemed: a country's store, or the EU's (products' regions are
# 2-letter codes like these: US, DE, TR).
REGIONS = frozenset(COUNTRIES) | {"EU"}
_REGION_HINTS = {"UK": "use GB for the United Kingdom"}
_AMOUNT = re.compile(r"\d{1,3}(,\d{3})+(\.\d+)?|\d+(\.\d+)?")
_SEPARATORS = re.compile(r"[\s,;]+")

# How the form (and the console) names each choice.
BUYER_TYPE_WORDS = {
    BuyerType.RESELLER: "Reseller (online or retail store)",
    BuyerType.MARKETPLACE: "Marketplace",
    BuyerType.GAMING_PLATFORM: "Gaming platform",
    BuyerType.REWARDS: "Rewards, loyalty or incentive programme",
    BuyerType.OTHER: "Other",
}
PAYMENT_WORDS = {
    PaymentPreference.BANK_TRANSFER: "Bank transfer (prepaid balance)",
    PaymentPreference.CARD: "Card",
    PaymentPreference.OTHER: "Other",
}
INTEGRATION_WORDS = {
    Integration.API: "API workflow: our systems order codes through the API",
    Integration.MANUAL: "Manual delivery: we order in the portal and receive codes by file",
}

E = TypeVar("E", bound=StrEnum)
T = TypeVar("T")


@dataclass(frozen=True)
class ApplicationForm:
    """What the applicant sent, as text: the public form's fields by name."""

    company: str = ""
    contact_name: str = ""
    email: str = ""
    country: str = ""
    website: str = ""
    buyer_type: str = ""
    monthly_volume: str = ""
    volume_currency: str = ""
    regions: str = ""  # "US, DE, TR"
    payment_preference: str = ""
    integration: str = ""
    use_case: str = ""

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(field.name for field in fields(cls))


@dataclass(frozen=True)
class CheckedApplication:
    """An application every rule accepted, normalised (e-mail lower-case, codes upper-case)."""

    company: str
    contact_name: str
    email: str
    country: str
    website: str | None
    buyer_type: BuyerType
    monthly_volume: Money
    regions: tuple[str, ...]
    payment_preference: PaymentPreference
    integration: Integration
    use_case: str


class InvalidApplicationError(InvalidInputError):
    """The fields to fix (``problems``: field name -> what is wrong with it); ``pointer``
    names the first, ``detail`` lists them all."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("; ".join(problems.values()), pointer=f"#/{next(iter(problems))}")
        self.problems = problems


def check(form: ApplicationForm) -> CheckedApplication:
    """The application, or InvalidApplicationError naming every field that breaks a rule."""
    problems: dict[str, str] = {}

    def take(name: str, rule: Callable[[], T]) -> T:
        try:
            return rule()
        except InvalidInputError as exc:
            problems[name] = exc.detail
            return cast(T, None)  # never used: the problems are raised below

    f = form
    company = take("company", lambda: line(f.company, "the company name", COMPANY_MAX))
    contact_name = take("contact_name", lambda: line(f.contact_name, "your name", NAME_MAX))
    email = take("email", lambda: _email(f.email))
    country = take("country", lambda: _country(f.country))
    website = take("website", lambda: _website(f.website))
    buyer_type = take("buyer_type", lambda: choice(f.buyer_type, BuyerType, "buyer type"))
    currency = take("volume_currency", lambda: _currency(f.volume_currency))
    volume = take("monthly_volume", lambda: _volume(f.monthly_volume, currency))
    regions = take("regions", lambda: _regions(f.regions))
    payment = take(
        "payment_preference",
        lambda: choice(f.payment_preference, PaymentPreference, "payment preference"),
    )
    integration = take("integration", lambda: choice(f.integration, Integration, "way of ordering"))
    use_case = take(
        "use_case", lambda: text(f.use_case, "the use case", USE_CASE_MAX, minimum=USE_CASE_MIN)
    )
    if problems:
        raise InvalidApplicationError(problems)
    return CheckedApplication(
        company, contact_name, email, country, website, buyer_type, volume, regions, payment,
        integration, use_case,
    )  # fmt: skip


def _hostile(value: str, multiline: bool) -> str | None:
    allowed = "\n\t" if multiline else ""
    for char in value:
        if char not in allowed and not char.isprintable():
            return char
    return None


def _refuse_hostile(value: str, label: str, multiline: bool) -> None:
    bad = _hostile(value, multiline)
    if bad is not None:
        raise InvalidInputError(
            f"{label} holds a control, direction-changing or invisible character "
            f"(U+{ord(bad):04X}): remove it"
        )


def text(value: str, label: str, maximum: int, *, minimum: int = 1) -> str:
    """Multi-line text (line breaks as ``\\n``), trimmed, ``minimum`` to ``maximum`` long."""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    _refuse_hostile(value, label, multiline=True)  # before trimming: even at either end
    return _sized(value.strip(), label, minimum, maximum)


def line(value: str, label: str, maximum: int, *, minimum: int = 1) -> str:
    """One line of printable text, trimmed, ``minimum`` to ``maximum`` characters."""
    _refuse_hostile(value, label, multiline=False)
    return _sized(value.strip(), label, minimum, maximum)


def _sized(value: str, label: str, minimum: int, maximum: int) -> str:
    if not value and minimum > 0:
        raise InvalidInputError(f"enter {label}")
    if not minimum <= len(value) <= maximum:
        allowed = f"{minimum:,} to {maximum:,}" if minimum else f"at most {maximum:,}"
        raise InvalidInputError(f"{label} must be {allowed} characters (it is {len(value):,})")
    return value


def choice(value: str, options: type[E], label: str) -> E:
    try:
        return options(value.strip())
    except ValueError:
        raise InvalidInputError(f"choose a {label}: {', '.join(options)}") from None


def _email(value: str) -> str:
    value = line(value, "the e-mail address", 254)
    return normal_email(value)


def _country(value: str) -> str:
    code = value.strip().upper()
    if code not in COUNTRIES:
        raise InvalidInputError("choose the company's country (an ISO code such as US or DE)")
    return code


def _website(value: str) -> str | None:
    """Optional; else an http(s) address of a host with a dot in its name, no user name."""
    value = line(value, "the website", WEBSITE_MAX, minimum=0)
    if not value:
        return None
    wrong = InvalidInputError(
        "the website must be an address such as https://example.com (http or https)"
    )
    try:
        parts = urlsplit(value)
        host, _ = parts.hostname, parts.port  # an impossible port raises ValueError
    except ValueError:
        raise wrong from None
    if parts.scheme.lower() not in {"http", "https"} or not host or "." not in host:
        raise wrong
    if parts.username is not None or " " in value:
        raise wrong
    return value


def _currency(value: str) -> str:
    try:
        return normalize_currency(value)
    except InvalidMoneyError:
        raise InvalidInputError("choose the currency of the volume (such as USD or EUR)") from None


def _volume(value: str, currency: str | None) -> Money:
    """A positive amount in ``currency``; thousands may be separated by commas (25,000).
    Without a valid currency only the amount's shape is checked (the currency's problem is
    reported on its own)."""
    amount = value.strip()
    if not _AMOUNT.fullmatch(amount):
        raise InvalidInputError(
            "the expected monthly volume must be an amount such as 25000 or 25,000.00"
        )
    if currency is None:
        return cast(Money, None)  # never used: the currency's problem is raised
    try:
        money = Money.parse(amount.replace(",", ""), currency)
    except InvalidMoneyError as exc:
        raise InvalidInputError(f"the expected monthly volume: {exc}") from None
    if money.minor <= 0:
        raise InvalidInputError("the expected monthly volume must be more than zero")
    return money


def _regions(value: str) -> tuple[str, ...]:
    """1 to MAX_REGIONS distinct region codes (2 letters: US, DE, EU), in the order given."""
    _refuse_hostile(value, "the regions", multiline=True)
    codes = [code for code in _SEPARATORS.split(value.strip().upper()) if code]
    if not codes:
        raise InvalidInputError("enter the regions you sell in, such as US, DE, TR")
    for code in codes:
        if code not in REGIONS:
            hint = _REGION_HINTS.get(code, "use 2-letter codes such as US, DE, TR")
            raise InvalidInputError(f"{code[:12]!r} is not a region code: {hint}")
    distinct = tuple(dict.fromkeys(codes))
    if len(distinct) > MAX_REGIONS:
        raise InvalidInputError(f"name at most {MAX_REGIONS} regions")
    return distinct
