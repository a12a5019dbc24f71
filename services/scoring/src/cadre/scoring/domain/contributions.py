"""From folded facts to contributions (the explain list) and scores. Every point of a score
is one contribution naming its event and rule; a score is the sum of its contributions, so
explain always adds up. Caps are applied here, never while folding. Pure."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import NamedTuple

from cadre.events.vocabulary import Dimension
from cadre.scoring.domain.facts import Fact, Metric
from cadre.scoring.domain.ruleset import Ruleset
from cadre.scoring.domain.tasks import TASK_METRICS, task_outcome

FactState = Mapping[uuid.UUID, tuple[Fact, ...]]


class Contribution(NamedTuple):
    """One rule's points for one event. A named tuple, as `Fact` is, for the same reason:
    a replay derives millions."""

    cadre_id: str
    day: date
    dimension: Dimension
    rule: str
    event_id: uuid.UUID
    raw_points: float
    points: float  # after caps and voiding; what the score counts
    voided: bool = False

    @property
    def cap_effect(self) -> float:
        return 0.0 if self.voided else self.points - self.raw_points


def half_year(day: date) -> tuple[int, int]:
    return day.year, 1 if day.month <= 6 else 2


def contributions(state: FactState, ruleset: Ruleset) -> list[Contribution]:
    """Every contribution the facts earn under `ruleset`, in a deterministic order. The
    facts are taken as they come: what decides between them is ordered explicitly below
    (a group's facts, the first entry of a day, the caps), and the result is sorted."""
    facts = [fact for group in state.values() for fact in group]
    voided = {f.target for f in facts if f.metric is Metric.VOID}
    points = ruleset.points
    raw: list[tuple[Fact, Dimension, str, float]] = []
    simple = {
        Metric.DAY_PRESENT: (Dimension.DISCIPLINE, points.day_present),
        Metric.DAY_ABSENT: (Dimension.DISCIPLINE, points.day_absent),
        Metric.CHECK_IN_FLAGGED: (Dimension.DISCIPLINE, points.check_in_flagged),
        Metric.JOURNAL_MISSED: (Dimension.DISCIPLINE, points.journal_missed),
    }
    grouped: dict[tuple[Metric, str, str], list[Fact]] = defaultdict(list)
    for fact in facts:
        if fact.metric in simple:
            dimension, value = simple[fact.metric]
            raw.append((fact, dimension, fact.metric.value, value))
        elif fact.metric is Metric.STUDY and fact.dimension:
            raw.append((fact, fact.dimension, "study", points.study))
        elif fact.metric is Metric.BRANCH_ACTIVITY:
            raw.append((fact, Dimension.POLITICS, "branch_activity", points.branch_activity))
        elif fact.metric is Metric.ENDORSEMENT and fact.dimension:
            raw.append((fact, fact.dimension, "endorsement", points.endorsement))
        elif fact.metric is Metric.ENTRY_POSTED:
            grouped[(Metric.ENTRY_POSTED, fact.cadre_id, fact.key)].append(fact)
        elif fact.metric in (Metric.REACTION, Metric.REACTION_RETRACTED):
            grouped[(Metric.REACTION, fact.cadre_id, fact.key)].append(fact)
        elif fact.metric in TASK_METRICS:
            grouped[(Metric.TASK_COMPLETED, fact.cadre_id, fact.key)].append(fact)

    first_entry_of_day: dict[tuple[str, date], Fact] = {}
    for (kind, _, _), group in grouped.items():
        group.sort(key=lambda f: (f.at, f.event_id))
        if kind is Metric.ENTRY_POSTED:
            posted = min(group, key=lambda f: (f.revision, f.at, f.event_id))
            latest = max(group, key=lambda f: (f.revision, f.at, f.event_id))
            slot = (posted.cadre_id, posted.day)
            if slot not in first_entry_of_day or (posted.at, posted.event_id) < (
                first_entry_of_day[slot].at,
                first_entry_of_day[slot].event_id,
            ):
                first_entry_of_day[slot] = posted
            # Edits change the tags; the latest revision counts, each tag once.
            for tag in dict.fromkeys(latest.tags):
                rule = points.tags.get(tag)
                if rule is not None:
                    raw.append((latest, rule.dimension, f"tag:{tag}", rule.points))
        elif kind is Metric.REACTION:
            decisive = group[-1]  # the latest reaction or retraction by this leader wins
            if decisive.metric is Metric.REACTION and decisive.level and decisive.dimension:
                table = points.reaction_like if decisive.positive else points.reaction_dislike
                name = "like" if decisive.positive else "dislike"
                raw.append(
                    (
                        decisive,
                        decisive.dimension,
                        f"reaction:{name}:{decisive.level.value}",
                        table.get(decisive.level, 0.0),
                    )
                )
        else:
            task = task_outcome(group)
            done, overdue = task.completion, task.overdue
            if done is not None and done.dimension is not None:  # 100% if ungraded
                raw.append((done, done.dimension, "task_completed", done.amount * task.quality))
            if overdue is not None and overdue.dimension is not None:
                raw.append((overdue, overdue.dimension, "task_overdue", -overdue.amount))
    for fact in first_entry_of_day.values():
        raw.append((fact, Dimension.RESPONSIBILITY, "first_entry", points.first_entry))

    return _apply_caps_and_voids(raw, voided, ruleset)


def _apply_caps_and_voids(
    raw: list[tuple[Fact, Dimension, str, float]], voided: set[uuid.UUID | None], ruleset: Ruleset
) -> list[Contribution]:
    cap = ruleset.points.endorsement_cap_per_half_year
    used: dict[tuple[str, Dimension, tuple[int, int]], float] = defaultdict(float)
    result = []
    capped = []
    for item in raw:
        fact, dimension, rule, value = item
        if voided and fact.event_id in voided:  # rarely any: UUID.__hash__ is Python
            result.append(
                Contribution(
                    fact.cadre_id, fact.day, dimension, rule, fact.event_id, value, 0.0, True
                )
            )
        elif rule == "endorsement":
            capped.append(item)
        else:
            result.append(
                Contribution(fact.cadre_id, fact.day, dimension, rule, fact.event_id, value, value)
            )
    # Only a cap depends on the order: endorsements count in the order they were made
    # (by the id's integer, which orders as the UUID does without UUID.__lt__, Python).
    for fact, dimension, rule, value in sorted(
        capped, key=lambda r: (r[0].day, r[0].at, r[0].event_id.int)
    ):
        window = (fact.cadre_id, dimension, half_year(fact.day))
        counted = max(0.0, min(value, cap - used[window]))
        used[window] += counted
        result.append(
            Contribution(fact.cadre_id, fact.day, dimension, rule, fact.event_id, value, counted)
        )
    return sorted(result, key=_contribution_order)


# The order of the result, as a key: the contributions table's key order (cadre, event,
# rule, dimension), so that a replay copies each cadre's rows in the order PostgreSQL
# then indexes them by (its sort of runs that arrive in order is about a third faster).
# A cadre's contributions differ by (event, rule, dimension); the points break any tie
# all the same. Comparing the named tuples themselves compared UUIDs with UUID.__lt__
# (Python), for most of the time spent deriving; the id's integer orders as the UUID.
def _contribution_order(c: Contribution) -> tuple[str, int, str, str, float, float, bool]:
    return (c.cadre_id, c.event_id.int, c.rule, c.dimension, c.raw_points, c.points, c.voided)


@dataclass(frozen=True)
class Radar:
    dimensions: dict[Dimension, float]
    composite: float


def radar(
    items: Iterable[Contribution], cadre_id: str, start: date, end: date, ruleset: Ruleset
) -> Radar:
    """The five dimension scores and the weighted composite of one cadre over [start, end]."""
    totals = dict.fromkeys(Dimension, 0.0)
    for item in items:
        if item.cadre_id == cadre_id and start <= item.day <= end:
            totals[item.dimension] += item.points
    totals = {d: round(v, 6) for d, v in totals.items()}
    composite = round(sum(ruleset.weights[d] * v for d, v in totals.items()), 6)
    return Radar(totals, composite)


def explain(
    items: Iterable[Contribution], cadre_id: str, start: date, end: date, dimension: Dimension
) -> list[Contribution]:
    """Every contribution behind one dimension's score, voided ones included."""
    return [
        i
        for i in items
        if i.cadre_id == cadre_id and i.dimension is dimension and start <= i.day <= end
    ]
