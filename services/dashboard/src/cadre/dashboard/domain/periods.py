"""The periods the dashboard offers, named as scoring names them."""

from __future__ import annotations

import re
from datetime import date

PERIOD_PATTERN = re.compile(r"^([1-9]\d{3})-(?:(0[1-9]|1[0-2])|Q([1-4])|H([12]))$")


def current_periods(today: date) -> dict[str, str]:
    """This month, quarter and half-year of `today` (in the tenant's time zone)."""
    return {
        "month": f"{today.year}-{today.month:02d}",
        "quarter": f"{today.year}-Q{(today.month - 1) // 3 + 1}",
        "half": f"{today.year}-H{1 if today.month <= 6 else 2}",
    }


def half_year_of(period: str) -> str:
    """The half-year a month, quarter or half-year falls in: the period of its stars."""
    match = PERIOD_PATTERN.match(period)
    if match is None:
        raise ValueError(
            f"{period!r} is not a month (2026-11), quarter (2026-Q4) or half (2026-H2)"
        )
    year, month, quarter, half = match.groups()
    if half:
        return period
    first_month = int(month) if month else (int(quarter) - 1) * 3 + 1
    return f"{year}-H{1 if first_month <= 6 else 2}"
