"""The manual-review rules of ``codeshelf.orders.review``, checked against an independent
restatement of them:

- an order of more codes than the partner's quantity limit is reviewed;
- an order costing more than the partner's amount limit, in that limit's currency, is reviewed
  (a limit in another currency does not apply);
- an order of more than ``unusual_floor`` codes and more than ``unusual_factor`` times the
  partner's usual size is reviewed, once the partner has a usual size (``usual`` is None before);
- the partner's own quantity limit takes precedence over the operator-wide default.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from codeshelf.kit.money import Money
from codeshelf.kit.settings import Settings
from codeshelf.orders.service.review import ReviewLimits, reasons
from codeshelf.partners.models import Partner

CURRENCIES = ["USD", "EUR", "GBP", "JPY"]

quantities = st.integers(min_value=1, max_value=20_000)
minor_amounts = st.integers(min_value=1, max_value=10**9)
currencies = st.sampled_from(CURRENCIES)
moneys = st.builds(Money, minor_amounts, currencies)
limits = st.builds(
    ReviewLimits,
    quantity_over=st.none() | st.integers(min_value=1, max_value=20_000),
    amount_over=st.none() | moneys,
    unusual_factor=st.integers(min_value=2, max_value=50),
    unusual_floor=st.integers(min_value=1, max_value=1_000),
)
usuals = st.none() | st.integers(min_value=1, max_value=2_000)


@dataclass(frozen=True)
class Expected:
    """Which rules an order breaks, restated from the rules' description."""

    quantity: bool
    amount: bool
    unusual: bool

    @property
    def count(self) -> int:
        return int(self.quantity) + int(self.amount) + int(self.unusual)


def expected(quantity: int, total: Money, rules: ReviewLimits, usual: int | None) -> Expected:
    limit = rules.quantity_over
    amount = rules.amount_over
    return Expected(
        quantity=limit is not None and quantity > limit,
        amount=amount is not None
        and amount.currency == total.currency
        and total.minor > amount.minor,
        unusual=usual is not None
        and quantity > rules.unusual_floor
        and quantity > rules.unusual_factor * usual,
    )


def settings_with(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def partner_with(quantity_over: int | None = None, amount_over: Money | None = None) -> Partner:
    return Partner(
        public_id="ptr_rules",
        name="Rules Co",
        review_quantity_over=quantity_over,
        review_amount_over_minor=None if amount_over is None else amount_over.minor,
        review_amount_currency=None if amount_over is None else amount_over.currency,
    )


@given(quantities, moneys, limits, usuals)
def test_reasons_match_the_restated_rules(
    quantity: int, total: Money, rules: ReviewLimits, usual: int | None
) -> None:
    found = reasons(quantity, total, rules, usual)
    want = expected(quantity, total, rules, usual)
    assert len(found) == want.count, (found, want)
    # Each broken rule is named, in this order, as the operator's queue shows it.
    named = [
        (want.quantity, f"{quantity} codes is above the limit of {rules.quantity_over}"),
        (want.amount, f"{total} is above the limit of {rules.amount_over}"),
        (
            want.unusual,
            f"{quantity} codes is more than {rules.unusual_factor} times the usual order "
            f"of {usual}",
        ),
    ]
    assert found == [text for broken, text in named if broken]


@given(quantities, moneys, limits, usuals)
def test_reasons_are_monotonic_in_size_and_cost(
    quantity: int, total: Money, rules: ReviewLimits, usual: int | None
) -> None:
    """Lowering the order's size and cost never adds a reason, raising them never removes one."""
    smaller = reasons(
        max(1, quantity // 2), Money(max(1, total.minor // 2), total.currency), rules, usual
    )
    larger = reasons(quantity * 2, Money(total.minor * 2, total.currency), rules, usual)
    assert len(smaller) <= len(reasons(quantity, total, rules, usual)) <= len(larger)


@given(quantities, moneys, usuals)
def test_without_limits_or_history_nothing_is_reviewed(
    quantity: int, total: Money, usual: int | None
) -> None:
    assert reasons(quantity, total, ReviewLimits(), None) == []
    # With history, only an unusual size can hold an order.
    found = reasons(quantity, total, ReviewLimits(), usual)
    assert found == [] or (usual is not None and quantity > 100 and quantity > 10 * usual)


@given(quantities, minor_amounts, st.sampled_from(CURRENCIES), st.sampled_from(CURRENCIES))
def test_an_amount_limit_in_another_currency_never_applies(
    quantity: int, minor: int, order_currency: str, limit_currency: str
) -> None:
    rules = ReviewLimits(amount_over=Money(1, limit_currency))
    found = reasons(quantity, Money(minor, order_currency), rules, None)
    assert bool(found) == (order_currency == limit_currency and minor > 1)


@given(st.integers(min_value=1, max_value=10_000))
def test_limits_are_exclusive(limit: int) -> None:
    """At the limit an order goes through; one code (or one cent) more and it is reviewed."""
    quantity_rule = ReviewLimits(quantity_over=limit)
    assert reasons(limit, Money(100, "USD"), quantity_rule, None) == []
    assert len(reasons(limit + 1, Money(100, "USD"), quantity_rule, None)) == 1
    amount_rule = ReviewLimits(amount_over=Money(limit, "USD"))
    assert reasons(1, Money(limit, "USD"), amount_rule, None) == []
    assert len(reasons(1, Money(limit + 1, "USD"), amount_rule, None)) == 1


def test_the_unusual_size_rule_at_its_boundaries() -> None:
    rules = ReviewLimits(unusual_factor=10, unusual_floor=100)
    usd = Money(100, "USD")
    # Ten times a usual 20 is 200: 200 is not more, 201 is.
    assert reasons(200, usd, rules, 20) == []
    assert reasons(201, usd, rules, 20) == ["201 codes is more than 10 times the usual order of 20"]
    # Never at or below the floor, however small the usual order...
    assert reasons(100, usd, rules, 1) == []
    assert len(reasons(101, usd, rules, 1)) == 1
    # ...and never without a usual size (fewer than 5 orders).
    assert reasons(10_000, usd, rules, None) == []
    assert rules.may_be_unusual(101) and not rules.may_be_unusual(100)


def test_every_broken_rule_is_given_as_a_reason() -> None:
    rules = ReviewLimits(quantity_over=5, amount_over=Money(10_000, "USD"))
    assert reasons(500, Money(2_325_000, "USD"), rules, 10) == [
        "500 codes is above the limit of 5",
        "23250.00 USD is above the limit of 100.00 USD",
        "500 codes is more than 10 times the usual order of 10",
    ]


@given(
    st.none() | st.integers(min_value=1, max_value=10_000),
    st.none() | st.integers(min_value=1, max_value=10_000),
    st.none() | moneys,
    st.integers(min_value=2, max_value=50),
    st.integers(min_value=1, max_value=1_000),
)
def test_for_partner_prefers_the_partners_own_limit(
    own: int | None, default: int | None, amount: Money | None, factor: int, floor: int
) -> None:
    settings = settings_with(
        review_quantity_over=default, review_unusual_factor=factor, review_unusual_floor=floor
    )
    rules = ReviewLimits.for_partner(partner_with(own, amount), settings)
    assert rules.quantity_over == (own if own is not None else default)
    assert rules.amount_over == amount
    assert (rules.unusual_factor, rules.unusual_floor) == (factor, floor)


def test_an_amount_without_a_currency_is_no_limit() -> None:
    partner = partner_with()
    partner.review_amount_over_minor = 500
    assert ReviewLimits.for_partner(partner, settings_with()).amount_over is None
