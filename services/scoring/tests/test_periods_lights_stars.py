"""Periods and windows, warning lights with their reasons, and stars by percentile."""

from __future__ import annotations

from datetime import date

import pytest

from cadre.events.calendar import WorkdayCalendar
from cadre.events.vocabulary import Light
from cadre.scoring.domain.lights import LightInputs, LightRules, evaluate_light
from cadre.scoring.domain.periods import (
    PeriodError,
    period_bounds,
    trailing_days,
    trailing_workdays,
)
from cadre.scoring.domain.ruleset import default_ruleset
from cadre.scoring.domain.stars import assign_stars, percentiles


@pytest.mark.parametrize(
    ("period", "bounds"),
    [
        ("2026-11-20", (date(2026, 11, 20), date(2026, 11, 20))),
        ("2026-W47", (date(2026, 11, 16), date(2026, 11, 22))),
        ("2026-02", (date(2026, 2, 1), date(2026, 2, 28))),
        ("2028-02", (date(2028, 2, 1), date(2028, 2, 29))),
        ("2026-Q4", (date(2026, 10, 1), date(2026, 12, 31))),
        ("2026-H1", (date(2026, 1, 1), date(2026, 6, 30))),
        ("2026", (date(2026, 1, 1), date(2026, 12, 31))),
    ],
)
def test_periods(period: str, bounds: tuple[date, date]) -> None:
    assert period_bounds(period) == bounds


@pytest.mark.parametrize("period", ["2026-13", "2026-W54", "2026-02-30", "November", "2026-Q5", ""])
def test_bad_periods_are_refused_with_the_formats(period: str) -> None:
    with pytest.raises(PeriodError):
        period_bounds(period)


def test_trailing_windows_count_workdays_across_the_national_day_holiday() -> None:
    assert trailing_days(date(2026, 11, 30), 30) == (date(2026, 11, 1), date(2026, 11, 30))
    # 5 workdays back from Friday 9 Oct 2026: 8-9 Oct, then the holiday (1-7 Oct), then 28-30 Sep.
    assert trailing_workdays(WorkdayCalendar(), date(2026, 10, 9), 5) == (
        date(2026, 9, 28),
        date(2026, 10, 9),
    )
    # The adjusted working Saturday 10 Oct counts.
    assert trailing_workdays(WorkdayCalendar(), date(2026, 10, 10), 2) == (
        date(2026, 10, 9),
        date(2026, 10, 10),
    )


def test_green_when_nothing_is_wrong() -> None:
    assert evaluate_light(LightInputs()) == (Light.GREEN, [])


@pytest.mark.parametrize(
    ("inputs", "reason"),
    [
        (LightInputs(absences_30d=3), "3 absences in the last 30 days"),
        (LightInputs(missed_journals_30wd=5), "5 missed journals in the last 30 workdays"),
        (
            LightInputs(stationed=True, stationed_days_last_month=19),
            "stationed but present 19 days last month",
        ),
        (LightInputs(spoof_flags_30d=2), "2 spoofing flags in the last 30 days"),
        (
            LightInputs(quarter_bottom_share=0.05, unit_size=20),
            "in the bottom 5% of the unit this quarter",
        ),
    ],
)
def test_each_red_rule_with_its_reason(inputs: LightInputs, reason: str) -> None:
    assert evaluate_light(inputs) == (Light.RED, [reason])


@pytest.mark.parametrize(
    ("inputs", "reason"),
    [
        (LightInputs(absences_30d=2), "2 absences in the last 30 days"),
        (LightInputs(missed_journals_30wd=4), "4 missed journals in the last 30 workdays"),
        (LightInputs(oldest_overdue_task_days=8), "a task overdue for 8 days"),
        (
            LightInputs(composite_this_month=6, composite_3_month_average=10),
            "this month's composite is below 70% of the 3-month average",
        ),
        (
            LightInputs(quarter_bottom_share=0.1, unit_size=10),
            "in the bottom 15% of the unit this quarter",
        ),
    ],
)
def test_each_yellow_rule_with_its_reason(inputs: LightInputs, reason: str) -> None:
    assert evaluate_light(inputs) == (Light.YELLOW, [reason])


def test_boundaries_and_configuration() -> None:
    assert (
        evaluate_light(LightInputs(stationed=True, stationed_days_last_month=20))[0] is Light.GREEN
    )
    assert (
        evaluate_light(LightInputs(stationed=False, stationed_days_last_month=3))[0] is Light.GREEN
    )
    small_unit = LightInputs(quarter_bottom_share=0.05, unit_size=19)
    assert evaluate_light(small_unit)[0] is Light.YELLOW, (
        "bottom 5% counts as red only in units of 20+"
    )
    strict = LightRules(red_absences_30d=1)
    assert evaluate_light(LightInputs(absences_30d=1), strict)[0] is Light.RED
    light, reasons = evaluate_light(LightInputs(absences_30d=4, spoof_flags_30d=3))
    assert light is Light.RED
    assert len(reasons) == 2, "every reason that applies is given"


def test_percentiles_and_stars() -> None:
    composites = {f"c{i}": float(i) for i in range(100)}
    stars = assign_stars(composites, default_ruleset())
    assert (
        stars["c99"],
        stars["c90"],
        stars["c89"],
        stars["c70"],
        stars["c40"],
        stars["c15"],
        stars["c14"],
    ) == (5, 5, 4, 4, 3, 2, 1)
    assert percentiles({"a": 1.0, "b": 1.0, "c": 2.0}) == {"a": 0.0, "b": 0.0, "c": 200 / 3}
    assert percentiles({}) == {}
