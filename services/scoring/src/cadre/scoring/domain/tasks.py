"""What a task's facts add up to: the completion that counts (if any), its grade, and
whether the task was cancelled. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cadre.scoring.domain.facts import Fact, Metric

TASK_METRICS = frozenset(
    {
        Metric.TASK_COMPLETED,
        Metric.TASK_GRADED,
        Metric.TASK_OVERDUE,
        Metric.TASK_REOPENED,
        Metric.TASK_CANCELLED,
    }
)


@dataclass(frozen=True)
class TaskOutcome:
    completion: Fact | None  # the completion that counts: none if reopened after it
    quality: float  # of the counted completion, 0..1; 1 when ungraded
    overdue: Fact | None
    cancelled: bool

    @property
    def open(self) -> bool:
        return self.completion is None and not self.cancelled


def task_outcome(group: Iterable[Fact]) -> TaskOutcome:
    """`group`: the facts of one task. The latest completion counts unless a reopen came
    after it; a grade counts when given after that completion. Cancelling voids both the
    reward and the overdue penalty."""
    ordered = sorted(group, key=lambda f: (f.at, f.event_id))
    completion: Fact | None = None
    quality = 1.0
    overdue: Fact | None = None
    cancelled = False
    for fact in ordered:
        if fact.metric is Metric.TASK_COMPLETED:
            completion, quality = fact, 1.0
        elif fact.metric is Metric.TASK_GRADED and completion is not None:
            quality = fact.amount / 100
        elif fact.metric is Metric.TASK_REOPENED:
            completion, quality = None, 1.0
        elif fact.metric is Metric.TASK_OVERDUE:
            overdue = overdue or fact
        elif fact.metric is Metric.TASK_CANCELLED:
            cancelled = True
    if cancelled:
        return TaskOutcome(None, 1.0, None, True)
    return TaskOutcome(completion, quality, overdue, False)
