"""From facts and contributions to each cadre's warning light. Pure: the live sweep loads
the inputs from the projection, `what-if` computes them under a draft ruleset, and both
call the same functions."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from cadre.events.calendar import WorkdayCalendar
from cadre.events.vocabulary import Dimension, FlagReason, Light
from cadre.scoring.domain.contributions import Contribution
from cadre.scoring.domain.facts import Fact, Metric
from cadre.scoring.domain.lights import LightInputs, evaluate_light
from cadre.scoring.domain.periods import trailing_days, trailing_workdays
from cadre.scoring.domain.ranking import bottom_shares
from cadre.scoring.domain.ruleset import Ruleset
from cadre.scoring.domain.tasks import TASK_METRICS, task_outcome

# Flags that suggest a faked position, as opposed to a new phone or a trip outside the fence.
SPOOF_REASONS = frozenset(
    {FlagReason.IMPOSSIBLE_SPEED.value, FlagReason.REPEATED_COORDINATES.value}
)
# How far back the light rules look: three full months before this one, plus the quarter.
LOOKBACK_DAYS = 125


@dataclass(frozen=True)
class Member:
    cadre_id: str
    unit_id: str
    stationed: bool = False


@dataclass(frozen=True)
class Assessment:
    light: Light
    reasons: tuple[str, ...]


def composite(items: Iterable[Contribution], weights: Mapping[Dimension, float]) -> float:
    return round(sum(weights[item.dimension] * item.points for item in items), 6)


def month_start(day: date, months_back: int = 0) -> date:
    index = day.year * 12 + day.month - 1 - months_back
    return date(index // 12, index % 12 + 1, 1)


def quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def assess_tenant(
    members: Iterable[Member],
    facts: Iterable[Fact],
    contributions: Iterable[Contribution],
    as_of: date,
    calendar: WorkdayCalendar,
    ruleset: Ruleset,
) -> dict[str, Assessment]:
    """Every active member's light as of `as_of` (a local day of the tenant)."""
    members = list(members)
    facts_by_cadre: dict[str, list[Fact]] = defaultdict(list)
    for fact in facts:
        facts_by_cadre[fact.cadre_id].append(fact)
    contributions_by_cadre: dict[str, list[Contribution]] = defaultdict(list)
    for item in contributions:
        contributions_by_cadre[item.cadre_id].append(item)

    quarter_from = quarter_start(as_of)
    unit_scores: dict[str, dict[str, float]] = defaultdict(dict)
    for member in members:
        unit_scores[member.unit_id][member.cadre_id] = composite(
            (c for c in contributions_by_cadre[member.cadre_id] if quarter_from <= c.day <= as_of),
            ruleset.weights,
        )
    shares = {unit: bottom_shares(scores) for unit, scores in unit_scores.items()}

    last_30 = trailing_days(as_of, 30)
    last_30_workdays = trailing_workdays(calendar, as_of, 30)
    last_month = (month_start(as_of, 1), month_start(as_of) - timedelta(days=1))
    result = {}
    for member in members:
        own = facts_by_cadre[member.cadre_id]

        def count(metric: Metric, window: tuple[date, date], own: list[Fact] = own) -> int:
            return len({f.day for f in own if f.metric is metric and _within(f.day, window)})

        tasks: dict[str, list[Fact]] = defaultdict(list)
        for f in own:
            if f.metric in TASK_METRICS:
                tasks[f.key].append(f)
        outcomes = [task_outcome(group) for group in tasks.values()]
        overdue_days = [
            (as_of - task.overdue.day).days
            for task in outcomes
            if task.open and task.overdue is not None
        ]
        by_month = [
            composite(
                (
                    c
                    for c in contributions_by_cadre[member.cadre_id]
                    if month_start(as_of, back) <= c.day < month_start(as_of, back - 1)
                ),
                ruleset.weights,
            )
            for back in range(4)
        ]
        inputs = LightInputs(
            absences_30d=count(Metric.DAY_ABSENT, last_30),
            missed_journals_30wd=count(Metric.JOURNAL_MISSED, last_30_workdays),
            stationed=member.stationed,
            stationed_days_last_month=count(Metric.DAY_PRESENT, last_month),
            spoof_flags_30d=sum(
                1
                for f in own
                if f.metric is Metric.CHECK_IN_FLAGGED
                and _within(f.day, last_30)
                and SPOOF_REASONS.intersection(f.tags)
            ),
            quarter_bottom_share=shares[member.unit_id][member.cadre_id],
            unit_size=len(unit_scores[member.unit_id]),
            oldest_overdue_task_days=max(overdue_days) if overdue_days else None,
            composite_this_month=by_month[0],
            composite_3_month_average=round(sum(by_month[1:]) / 3, 6),
        )
        light, reasons = evaluate_light(inputs, ruleset.lights)
        result[member.cadre_id] = Assessment(light, tuple(reasons))
    return result


def _within(day: date, window: tuple[date, date]) -> bool:
    return window[0] <= day <= window[1]
