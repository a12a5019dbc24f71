"""The life of a task: open → completed (→ graded) → maybe reopened; open → cancelled.
Overdue is noted once, at the due time, while the task is open. Pure."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from cadre.journal.domain.rules import Refused


class TaskStatus(StrEnum):
    OPEN = "open"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


def check_complete(status: TaskStatus, assignee_id: str, actor_id: str, has_evidence: bool) -> None:
    if actor_id != assignee_id:
        raise Refused(403, "not-your-task", "Only the assignee completes a task.")
    if status is not TaskStatus.OPEN:
        raise Refused(409, f"task-{status.value}", f"The task is {status.value}.")
    if not has_evidence:
        raise Refused(
            422, "evidence-required", "Completing a task needs evidence: an entry or a file."
        )


def check_grade(status: TaskStatus) -> None:
    if status is not TaskStatus.COMPLETED:
        raise Refused(409, "task-not-completed", "Only a completed task can be graded.")


def check_reopen(status: TaskStatus) -> None:
    if status is not TaskStatus.COMPLETED:
        raise Refused(409, "task-not-completed", "Only a completed task can be reopened.")


def check_cancel(status: TaskStatus) -> None:
    if status is not TaskStatus.OPEN:
        raise Refused(409, f"task-{status.value}", "Only an open task can be cancelled.")


def reopened_due(old_due: datetime, now: datetime, requested: datetime | None) -> datetime:
    """A reopened task is due when asked, or at its old due time if that is still ahead,
    or else three days from now."""
    if requested is not None:
        if requested <= now:
            raise Refused(422, "due-in-past", "The new due time must be in the future.")
        return requested
    return old_due if old_due > now else now + timedelta(days=3)


def is_overdue(status: TaskStatus, due_at: datetime, now: datetime, noted: bool) -> bool:
    return status is TaskStatus.OPEN and due_at <= now and not noted
