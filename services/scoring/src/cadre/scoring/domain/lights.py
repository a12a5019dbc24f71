"""Red, yellow and green warning lights, each with the reasons that set it. Pure: the
inputs are computed from the projections, the thresholds come from the ruleset."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from cadre.events.vocabulary import Light


class LightRules(BaseModel):
    """Thresholds of the default rules (issue 4); every one is configurable per tenant."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    red_absences_30d: int = Field(3, ge=1)
    yellow_absences_30d: int = Field(2, ge=1)
    red_missed_journals_30wd: int = Field(5, ge=1)
    yellow_missed_journals_30wd: int = Field(3, ge=1)
    min_stationed_days: int = Field(20, ge=0)
    red_spoof_flags_30d: int = Field(2, ge=1)
    red_bottom_percent: float = Field(5, ge=0, le=100)
    red_bottom_min_unit_size: int = Field(20, ge=1)
    yellow_bottom_percent: float = Field(15, ge=0, le=100)
    # Ranking a unit of three says little, so the yellow bottom rule has a floor too.
    yellow_bottom_min_unit_size: int = Field(10, ge=1)
    yellow_overdue_days: int = Field(7, ge=0)
    yellow_below_own_average: float = Field(0.7, ge=0, le=1)


DEFAULT_LIGHT_RULES = LightRules()


@dataclass(frozen=True)
class LightInputs:
    absences_30d: int = 0
    missed_journals_30wd: int = 0
    stationed: bool = False
    stationed_days_last_month: int | None = None
    spoof_flags_30d: int = 0
    # The share of the unit (the cadre included) scoring at or below the cadre this quarter:
    # the lone lowest of 20 is at 0.05; when everyone ties it is 1, so nobody is "bottom".
    quarter_bottom_share: float | None = None
    unit_size: int = 0
    oldest_overdue_task_days: int | None = None
    composite_this_month: float | None = None
    composite_3_month_average: float | None = None


def evaluate_light(
    inputs: LightInputs, rules: LightRules = DEFAULT_LIGHT_RULES
) -> tuple[Light, list[str]]:
    red: list[str] = []
    if inputs.absences_30d >= rules.red_absences_30d:
        red.append(f"{inputs.absences_30d} absences in the last 30 days")
    if inputs.missed_journals_30wd >= rules.red_missed_journals_30wd:
        red.append(f"{inputs.missed_journals_30wd} missed journals in the last 30 workdays")
    if (
        inputs.stationed
        and inputs.stationed_days_last_month is not None
        and inputs.stationed_days_last_month < rules.min_stationed_days
    ):
        red.append(f"stationed but present {inputs.stationed_days_last_month} days last month")
    if inputs.spoof_flags_30d >= rules.red_spoof_flags_30d:
        red.append(f"{inputs.spoof_flags_30d} spoofing flags in the last 30 days")
    bottom = inputs.quarter_bottom_share
    if (
        bottom is not None
        and inputs.unit_size >= rules.red_bottom_min_unit_size
        and bottom * 100 <= rules.red_bottom_percent
    ):
        red.append(f"in the bottom {rules.red_bottom_percent:g}% of the unit this quarter")
    if red:
        return Light.RED, red

    yellow: list[str] = []
    if inputs.absences_30d >= rules.yellow_absences_30d:
        yellow.append(f"{inputs.absences_30d} absences in the last 30 days")
    if inputs.missed_journals_30wd >= rules.yellow_missed_journals_30wd:
        yellow.append(f"{inputs.missed_journals_30wd} missed journals in the last 30 workdays")
    if (
        inputs.oldest_overdue_task_days is not None
        and inputs.oldest_overdue_task_days > rules.yellow_overdue_days
    ):
        yellow.append(f"a task overdue for {inputs.oldest_overdue_task_days} days")
    if (
        inputs.composite_this_month is not None
        and inputs.composite_3_month_average is not None
        and inputs.composite_3_month_average > 0
        and inputs.composite_this_month
        < rules.yellow_below_own_average * inputs.composite_3_month_average
    ):
        yellow.append(
            f"this month's composite is below {rules.yellow_below_own_average:.0%}"
            " of the 3-month average"
        )
    if (
        bottom is not None
        and inputs.unit_size >= rules.yellow_bottom_min_unit_size
        and bottom * 100 <= rules.yellow_bottom_percent
    ):
        yellow.append(f"in the bottom {rules.yellow_bottom_percent:g}% of the unit this quarter")
    if yellow:
        return Light.YELLOW, yellow
    return Light.GREEN, []
