"""Who hears about an event. Pure: an event becomes routes to *audiences* (a person, the
leaders above a cadre, the org department, the approvers at a level); the adapter resolves
audiences to people from notify's replica of the directory."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cadre.events.catalogue import (
    AnyEvent,
    EntryReacted,
    JournalMissed,
    LeaveApproved,
    LeaveRejected,
    LeaveRequested,
    LeaveStepApproved,
    LightChanged,
    RankingPublished,
    TaskAssigned,
    TaskOverdue,
)
from cadre.events.units import covers
from cadre.events.vocabulary import LeaderLevel
from cadre.notify.domain.kinds import Kind


@dataclass(frozen=True)
class Person:
    cadre_id: str


@dataclass(frozen=True)
class LeadersAbove:
    """The nearest leaders whose unit contains the cadre's (never the cadre themself)."""

    cadre_id: str


@dataclass(frozen=True)
class UnitLeaders:
    """The leaders of the unit, or of the nearest unit above it that has one."""

    unit_id: str


@dataclass(frozen=True)
class OrgDepartment:
    """The tenant's organisation-department administrators (but not `exclude`, who hears
    about it in their own words)."""

    exclude: str | None = None


@dataclass(frozen=True)
class Approvers:
    """Every leader at `level` whose unit contains the requester: whoever can decide."""

    requester_id: str
    level: LeaderLevel


Audience = Person | LeadersAbove | UnitLeaders | OrgDepartment | Approvers


@dataclass(frozen=True)
class Route:
    audience: Audience
    kind: Kind
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Known:
    """What notify remembers from earlier events that a later one needs."""

    leave_chain: Sequence[LeaderLevel] = ()
    task_assigner: str | None = None
    task_title: str = ""


ROUTED_TYPES = frozenset(
    {
        "scoring.light_changed",
        "scoring.ranking_published",
        "journal.journal_missed",
        "attendance.leave_requested",
        "attendance.leave_step_approved",
        "attendance.leave_approved",
        "attendance.leave_rejected",
        "journal.task_assigned",
        "journal.task_overdue",
        "journal.entry_reacted",
    }
)


def routes(event: AnyEvent, known: Known = Known()) -> list[Route]:
    subject = event.subject
    match event:
        case LightChanged(data=data):
            params: dict[str, Any] = {
                "cadre_id": subject,
                "previous": data.previous.value if data.previous else None,
                "current": data.current.value,
                "reasons": list(data.reasons),
                "as_of": data.as_of.isoformat(),
            }
            return [
                Route(Person(subject), Kind.LIGHT_CHANGED, params),
                Route(LeadersAbove(subject), Kind.LIGHT_CHANGED_IN_UNIT, params),
                Route(OrgDepartment(exclude=subject), Kind.LIGHT_CHANGED_IN_UNIT, params),
            ]
        case RankingPublished(data=data):
            base = {"unit_id": data.unit_id, "period": data.period}
            found: list[Route] = [
                Route(Person(cadre), Kind.RANKING_SHOWCASED, base) for cadre in data.showcased
            ]
            for bottom in data.bottom:
                params = {**base, "cadre_id": bottom.cadre_id, "mentor_id": bottom.mentor_id}
                found.append(Route(Person(bottom.cadre_id), Kind.RANKING_BOTTOM, params))
                if bottom.mentor_id:
                    found.append(Route(Person(bottom.mentor_id), Kind.RANKING_MENTOR, params))
            summary = {
                **base,
                "showcased": list(data.showcased),
                "bottom": [b.cadre_id for b in data.bottom],
            }
            found.append(Route(UnitLeaders(data.unit_id), Kind.RANKING_PUBLISHED, summary))
            return found
        case JournalMissed(data=data):
            return [Route(Person(subject), Kind.JOURNAL_MISSED, {"day": data.day.isoformat()})]
        case LeaveRequested(data=data):
            params = _leave_params(subject, data.leave_id, 0) | {
                "kind": data.kind.value,
                "starts_on": data.starts_on.isoformat(),
                "ends_on": data.ends_on.isoformat(),
                "workdays": data.workdays,
                "reason": data.reason,
            }
            return [Route(Approvers(subject, data.chain[0].level), Kind.LEAVE_AWAITING, params)]
        case LeaveStepApproved(data=data):
            step = data.step + 1
            if step >= len(known.leave_chain):
                return []  # the last step: leave_approved follows and tells the requester
            params = _leave_params(subject, data.leave_id, step)
            return [Route(Approvers(subject, known.leave_chain[step]), Kind.LEAVE_AWAITING, params)]
        case LeaveApproved(data=data):
            params = _leave_params(subject, data.leave_id, None) | {
                "kind": data.kind.value,
                "starts_on": data.starts_on.isoformat(),
                "ends_on": data.ends_on.isoformat(),
            }
            return [Route(Person(subject), Kind.LEAVE_APPROVED, params)]
        case LeaveRejected(data=data):
            params = _leave_params(subject, data.leave_id, data.step) | {
                "reason": data.reason,
                "approver_id": data.approver_id,
            }
            return [Route(Person(subject), Kind.LEAVE_REJECTED, params)]
        case TaskAssigned(data=data):
            params = {
                "task_id": data.task_id,
                "title": data.title,
                "due_at": data.due_at.isoformat(),
                "assigner_id": data.assigner_id,
                "reward_points": data.reward_points,
                "penalty_points": data.penalty_points,
            }
            return [Route(Person(subject), Kind.TASK_ASSIGNED, params)]
        case TaskOverdue(data=data):
            params = {
                "task_id": data.task_id,
                "title": known.task_title,
                "due_at": data.due_at.isoformat(),
                "assignee_id": subject,
                "penalty_points": data.penalty_points,
            }
            found = [Route(Person(subject), Kind.TASK_OVERDUE, params)]
            if known.task_assigner and known.task_assigner != subject:
                found.append(Route(Person(known.task_assigner), Kind.TASK_OVERDUE_ASSIGNER, params))
            return found
        case EntryReacted(data=data):
            params = {
                "entry_id": data.entry_id,
                "reaction": data.reaction.value,
                "reason": data.reason,
                "reactor_id": event.actor,
                "entry_day": data.entry_day.isoformat() if data.entry_day else None,
            }
            return [Route(Person(subject), Kind.ENTRY_REACTED, params)]
        case _:
            return []


def _leave_params(requester: str, leave_id: str, step: int | None) -> dict[str, Any]:
    return {"leave_id": leave_id, "requester_id": requester, "step": step}


@dataclass(frozen=True)
class Candidate:
    cadre_id: str
    unit_path: str
    leader_level: LeaderLevel | None


def nearest_leaders(candidates: Sequence[Candidate], unit_path: str, exclude: str) -> list[str]:
    """Among leaders whose unit contains `unit_path`, the ones at the deepest such unit."""
    covering = [
        c
        for c in candidates
        if c.leader_level is not None and c.cadre_id != exclude and covers(c.unit_path, unit_path)
    ]
    if not covering:
        return []
    depth = max(c.unit_path.rstrip("/").count("/") for c in covering)
    return sorted(c.cadre_id for c in covering if c.unit_path.rstrip("/").count("/") == depth)


def approvers(
    candidates: Sequence[Candidate], level: LeaderLevel, unit_path: str, exclude: str
) -> list[str]:
    """The leaders attendance would let decide this step (see its `check_approver`)."""
    return sorted(
        c.cadre_id
        for c in candidates
        if c.leader_level is level and c.cadre_id != exclude and covers(c.unit_path, unit_path)
    )
