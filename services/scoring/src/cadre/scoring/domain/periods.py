"""Calendar periods and trailing workday windows. Pure."""

from __future__ import annotations

import calendar as month_calendar
import re
from datetime import date, timedelta

from cadre.events.calendar import WorkdayCalendar

_PATTERNS = {
    "day": re.compile(r"^(\d{4})-(\d{2})-(\d{2})$"),
    "week": re.compile(r"^(\d{4})-W(\d{2})$"),
    "month": re.compile(r"^(\d{4})-(\d{2})$"),
    "quarter": re.compile(r"^(\d{4})-Q([1-4])$"),
    "half": re.compile(r"^(\d{4})-H([12])$"),
    "year": re.compile(r"^(\d{4})$"),
}


class PeriodError(ValueError):
    pass


def period_bounds(period: str) -> tuple[date, date]:
    """First and last day of a period written as 2026-11-20, 2026-W47, 2026-11, 2026-Q4,
    2026-H2 or 2026 (weeks are ISO weeks, Monday to Sunday)."""
    for kind, pattern in _PATTERNS.items():
        match = pattern.match(period)
        if not match:
            continue
        numbers = [int(part) for part in match.groups()]
        try:
            return _bounds(kind, numbers)
        except ValueError as exc:
            raise PeriodError(f"{period!r} is not a real {kind}: {exc}") from exc
    raise PeriodError(
        f"{period!r} is not a period: use 2026-11-20, 2026-W47, 2026-11, 2026-Q4, 2026-H2 or 2026"
    )


def _bounds(kind: str, n: list[int]) -> tuple[date, date]:
    year = n[0]
    if kind == "day":
        day = date(year, n[1], n[2])
        return day, day
    if kind == "week":
        start = date.fromisocalendar(year, n[1], 1)
        return start, start + timedelta(days=6)
    if kind == "month":
        return _months(year, n[1], 1)
    if kind == "quarter":
        return _months(year, 3 * n[1] - 2, 3)
    if kind == "half":
        return _months(year, 6 * n[1] - 5, 6)
    return date(year, 1, 1), date(year, 12, 31)


def _months(year: int, first_month: int, count: int) -> tuple[date, date]:
    last_month = first_month + count - 1
    return date(year, first_month, 1), date(
        year, last_month, month_calendar.monthrange(year, last_month)[1]
    )


def trailing_days(end: date, days: int) -> tuple[date, date]:
    """The `days` calendar days ending with `end`."""
    return end - timedelta(days=days - 1), end


def trailing_workdays(calendar: WorkdayCalendar, end: date, workdays: int) -> tuple[date, date]:
    """The shortest window ending with `end` that holds `workdays` workdays."""
    start, found = end, 0
    while True:
        if calendar.is_workday(start):
            found += 1
            if found == workdays:
                return start, end
        start -= timedelta(days=1)


def periods_containing(day: date) -> list[str]:
    """The names of the day, week, month, quarter, half-year and year that hold `day`."""
    iso_year, iso_week, _ = day.isocalendar()
    return [
        day.isoformat(),
        f"{iso_year}-W{iso_week:02d}",
        f"{day.year}-{day.month:02d}",
        f"{day.year}-Q{(day.month - 1) // 3 + 1}",
        f"{day.year}-H{1 if day.month <= 6 else 2}",
        str(day.year),
    ]
