"""When reminders are due, in the tenant's local time. Pure: the scheduler passes the clock,
the workday calendar and the state it read; tests pass any clock they like."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from cadre.events.calendar import WorkdayCalendar


@dataclass(frozen=True)
class ReminderRules:
    journal_at: time = time(20, 0)  # remind at this hour if no entry yet
    approval_after: timedelta = timedelta(hours=24)  # then again every such period
    task_due_at: time = time(9, 0)  # on the last workday before the due day


def journal_reminder_day(
    local_now: datetime, calendar: WorkdayCalendar, rules: ReminderRules
) -> date | None:
    """Today, once the reminder hour has passed on a workday (holidays and weekends are
    skipped, adjusted working weekends count); None otherwise. Late ticks on the same day
    still remind; the next day does not."""
    today = local_now.date()
    if local_now.time() < rules.journal_at or not calendar.is_workday(today):
        return None
    return today


def approval_reminder_round(
    waiting_since: datetime, now: datetime, rules: ReminderRules
) -> int | None:
    """How many full waiting periods have passed (1 after 24 h, 2 after 48 h, ...): each round
    is reminded once. None while the first period is not over."""
    rounds = int((now - waiting_since) / rules.approval_after)
    return rounds if rounds >= 1 else None


def task_reminder_day(due_local: date, calendar: WorkdayCalendar) -> date:
    """The day a task due on `due_local` is reminded: the last workday before it (a task due
    on Monday is reminded on Friday, or on an adjusted working Sunday if there is one)."""
    day = due_local - timedelta(days=1)
    for _ in range(30):
        if calendar.is_workday(day):
            return day
        day -= timedelta(days=1)
    return due_local - timedelta(days=1)


def task_reminder_due(
    due_local: datetime, local_now: datetime, calendar: WorkdayCalendar, rules: ReminderRules
) -> bool:
    """True from the reminder hour of the reminder day until the task is due."""
    day = task_reminder_day(due_local.date(), calendar)
    start = datetime.combine(day, rules.task_due_at, local_now.tzinfo)
    return start <= local_now < due_local
