"""What notify tells people, and the ways it can reach them."""

from __future__ import annotations

import uuid
from enum import StrEnum


class Kind(StrEnum):
    LIGHT_CHANGED = "light_changed"  # to the cadre whose light changed
    LIGHT_CHANGED_IN_UNIT = "light_changed_in_unit"  # to their leader and the org department
    RANKING_SHOWCASED = "ranking_showcased"
    RANKING_BOTTOM = "ranking_bottom"
    RANKING_MENTOR = "ranking_mentor"  # to the mentor suggested for a bottom cadre
    RANKING_PUBLISHED = "ranking_published"  # to the unit's leaders
    JOURNAL_MISSED = "journal_missed"
    LEAVE_AWAITING = "leave_awaiting"  # to the next approver in the chain
    LEAVE_APPROVED = "leave_approved"
    LEAVE_REJECTED = "leave_rejected"
    TASK_ASSIGNED = "task_assigned"
    TASK_OVERDUE = "task_overdue"  # to the assignee
    TASK_OVERDUE_ASSIGNER = "task_overdue_assigner"
    ENTRY_REACTED = "entry_reacted"
    REMIND_JOURNAL = "remind_journal"  # 20:00 on a workday with no entry yet
    REMIND_APPROVAL = "remind_approval"  # a leave waiting on you for more than 24 h
    REMIND_TASK_DUE = "remind_task_due"  # a task due tomorrow


class Channel(StrEnum):
    INBOX = "inbox"  # always: the inbox is the record of what was said
    LIVE = "live"  # pushed on the SSE stream
    EMAIL = "email"


ALL_CHANNELS = frozenset(Channel)

_NAMESPACE = uuid.UUID("5f0d8a4e-7f1c-4b59-9a3e-0c2f7f6c1d21")


def notification_id(tenant: str, source: str, kind: Kind, recipient: str) -> uuid.UUID:
    """The same cause, kind and recipient always name the same notification, so a
    redelivered event or a second scheduler tick finds the row it already wrote."""
    return uuid.uuid5(_NAMESPACE, f"{tenant}|{source}|{kind.value}|{recipient}")


def delivery_id(*parts: str) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, "delivery|" + "|".join(parts))
