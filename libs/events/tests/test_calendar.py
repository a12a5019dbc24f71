"""Workdays follow China's official calendar, then the tenant's overrides."""

from datetime import date

from cadre.events.calendar import WorkdayCalendar


def test_national_day_holiday_is_not_worked() -> None:
    calendar = WorkdayCalendar()
    assert not any(calendar.is_workday(date(2026, 10, day)) for day in range(1, 8))


def test_adjusted_working_weekends_are_worked() -> None:
    calendar = WorkdayCalendar()
    assert date(2026, 9, 20).weekday() == 6
    assert calendar.is_workday(date(2026, 9, 20))
    assert date(2026, 10, 10).weekday() == 5
    assert calendar.is_workday(date(2026, 10, 10))


def test_counting_across_the_national_day_week() -> None:
    # 28 Sep to 11 Oct 2026: 10 weekdays, 5 of them inside the holiday, plus 2 working weekend days.
    assert WorkdayCalendar().count_workdays(date(2026, 9, 28), date(2026, 10, 11)) == 6


def test_tenant_overrides_win_over_the_official_calendar() -> None:
    calendar = WorkdayCalendar({date(2026, 10, 3): True, date(2026, 11, 23): False})
    assert calendar.is_workday(date(2026, 10, 3))
    assert not calendar.is_workday(date(2026, 11, 23))  # a Monday given off locally


def test_years_beyond_the_official_data_fall_back_to_weekdays() -> None:
    calendar = WorkdayCalendar()
    assert not calendar.officially_covered(date(2031, 3, 3))
    assert calendar.is_workday(date(2031, 3, 3))  # Monday
    assert not calendar.is_workday(date(2031, 3, 8))  # Saturday
