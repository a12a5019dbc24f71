"""Workdays: China's official calendar (`chinese-calendar`, holidays and adjusted working
weekends) with a tenant's own overrides on top. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import date, timedelta

import chinese_calendar


class WorkdayCalendar:
    """`overrides` maps a date to True (a workday) or False (a day off) for one tenant.

    Years the official calendar does not cover yet fall back to Monday to Friday, so that
    counting never fails; publish overrides for such years once the State Council announces
    them."""

    def __init__(self, overrides: Mapping[date, bool] | None = None) -> None:
        self._overrides = dict(overrides or {})

    def is_workday(self, day: date) -> bool:
        if day in self._overrides:
            return self._overrides[day]
        if self.officially_covered(day):
            return bool(chinese_calendar.is_workday(day))
        return day.weekday() < 5

    @staticmethod
    def officially_covered(day: date) -> bool:
        try:
            chinese_calendar.is_workday(day)
        except NotImplementedError:
            return False
        return True

    def workdays(self, start: date, end: date) -> Iterator[date]:
        """The workdays from `start` to `end`, both included."""
        day = start
        while day <= end:
            if self.is_workday(day):
                yield day
            day += timedelta(days=1)

    def count_workdays(self, start: date, end: date) -> int:
        return sum(1 for _ in self.workdays(start, end))
