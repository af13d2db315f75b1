"""Business-day SLA clocks: weekends and holidays are skipped."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codeshelf.kit.clock import add_business_days, is_business_day, parse_holidays

NO_HOLIDAYS: frozenset[date] = frozenset()


def at_noon(day: str) -> datetime:
    return datetime.fromisoformat(f"{day}T12:00:00+00:00")


def test_friday_plus_one_is_monday() -> None:
    assert add_business_days(at_noon("2026-01-09"), 1, NO_HOLIDAYS) == at_noon("2026-01-12")


def test_saturday_start_counts_from_monday() -> None:
    saturday = at_noon("2026-01-10")
    assert add_business_days(saturday, 1, NO_HOLIDAYS) == at_noon("2026-01-12")
    assert add_business_days(saturday, 2, NO_HOLIDAYS) == at_noon("2026-01-13")


def test_sunday_start_counts_from_monday() -> None:
    assert add_business_days(at_noon("2026-01-11"), 1, NO_HOLIDAYS) == at_noon("2026-01-12")


def test_seven_business_days_from_a_wednesday() -> None:
    # Wed 7 Jan -> Thu 8, Fri 9, Mon 12, Tue 13, Wed 14, Thu 15, Fri 16.
    assert add_business_days(at_noon("2026-01-07"), 7, NO_HOLIDAYS) == at_noon("2026-01-16")


def test_zero_days_is_the_start() -> None:
    start = at_noon("2026-01-10")
    assert add_business_days(start, 0, NO_HOLIDAYS) == start


def test_time_of_day_is_kept() -> None:
    start = datetime(2026, 1, 7, 23, 59, 59, 999999, tzinfo=UTC)
    assert add_business_days(start, 1, NO_HOLIDAYS) == datetime(
        2026, 1, 8, 23, 59, 59, 999999, tzinfo=UTC
    )


def test_holidays_inside_the_span_push_the_deadline_out() -> None:
    # Wed 23 Dec 2026 + 7: Thu 24, (Fri 25 holiday), Mon 28, Tue 29, Wed 30, Thu 31,
    # (Fri 1 Jan holiday), Mon 4, Tue 5.
    holidays = parse_holidays("2026-12-25,2027-01-01")
    assert add_business_days(at_noon("2026-12-23"), 7, holidays) == at_noon("2027-01-05")
    assert add_business_days(at_noon("2026-12-23"), 7, NO_HOLIDAYS) == at_noon("2027-01-01")


def test_holiday_on_the_start_day_does_not_count() -> None:
    # Christmas 2026 is a Friday: one business day later is Monday.
    holidays = parse_holidays("2026-12-25")
    assert add_business_days(at_noon("2026-12-25"), 1, holidays) == at_noon("2026-12-28")
    # A Monday holiday as the start: the next business day is Tuesday.
    monday = frozenset({date(2026, 1, 12)})
    assert add_business_days(at_noon("2026-01-12"), 1, monday) == at_noon("2026-01-13")


def test_holiday_on_a_weekend_changes_nothing() -> None:
    saturday = frozenset({date(2026, 1, 10)})
    assert add_business_days(at_noon("2026-01-09"), 1, saturday) == at_noon("2026-01-12")


def test_is_business_day() -> None:
    assert is_business_day(date(2026, 1, 9), NO_HOLIDAYS)  # Friday
    assert not is_business_day(date(2026, 1, 10), NO_HOLIDAYS)  # Saturday
    assert not is_business_day(date(2026, 1, 11), NO_HOLIDAYS)  # Sunday
    assert not is_business_day(date(2026, 12, 25), {date(2026, 12, 25)})


def test_parse_holidays() -> None:
    assert parse_holidays("2026-12-25, 2027-01-01") == frozenset(
        {date(2026, 12, 25), date(2027, 1, 1)}
    )
    assert parse_holidays(" 2026-12-25 ,,2026-12-25, ") == frozenset({date(2026, 12, 25)})


@pytest.mark.parametrize("raw", ["", "   ", ","])
def test_parse_holidays_empty(raw: str) -> None:
    assert parse_holidays(raw) == frozenset()


def test_parse_holidays_names_the_bad_entry() -> None:
    with pytest.raises(ValueError, match=r"'2026-13-01'"):
        parse_holidays("2026-12-25, 2026-13-01")


def test_parse_holidays_refuses_words() -> None:
    with pytest.raises(ValueError, match=r"'christmas'"):
        parse_holidays("christmas")


HOLIDAY_POOL = [date(2026, 1, 1) + timedelta(days=n) for n in range(0, 120)]


@settings(max_examples=250, deadline=None)
@given(
    start=st.datetimes(
        min_value=datetime(2026, 1, 1),
        max_value=datetime(2026, 3, 1),
        timezones=st.just(UTC),
    ),
    days=st.integers(min_value=0, max_value=30),
    holidays=st.frozensets(st.sampled_from(HOLIDAY_POOL), max_size=25),
)
def test_exactly_days_business_days_lie_in_the_span(
    start: datetime, days: int, holidays: frozenset[date]
) -> None:
    result = add_business_days(start, days, holidays)
    assert result.time() == start.time()
    assert result.tzinfo == start.tzinfo
    if days == 0:
        assert result == start
        return
    assert result.weekday() < 5
    assert result.date() not in holidays
    span = (result.date() - start.date()).days
    counted = [
        start.date() + timedelta(days=n)
        for n in range(1, span + 1)
        if (start.date() + timedelta(days=n)).weekday() < 5
        and start.date() + timedelta(days=n) not in holidays
    ]
    assert len(counted) == days
