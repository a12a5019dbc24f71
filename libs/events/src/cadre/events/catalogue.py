"""Every event in the catalogue (DESIGN section 3) as a typed model, in one union on `type`.

Add fields as needed but keep names stable. A breaking change to a payload bumps
`CURRENT_SCHEMA_VERSION` and registers an upcaster in `cadre.events.upcasting`.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AwareDatetime, Field, TypeAdapter

from cadre.events.envelope import EventData, EventEnvelope
from cadre.events.upcasting import UPCASTERS
from cadre.events.vocabulary import (
    CheckInMode,
    DayStatus,
    Dimension,
    FlagReason,
    HalfDay,
    LeaderLevel,
    LeaveKind,
    Light,
    Reaction,
    Role,
    UnitLevel,
)

Latitude = Annotated[float, Field(ge=-90, le=90)]
Longitude = Annotated[float, Field(ge=-180, le=180)]
Identifier = Annotated[str, Field(min_length=1, max_length=128)]
Reason = Annotated[str, Field(min_length=1, max_length=1000)]
Points = Annotated[float, Field(ge=0, le=1000)]

# --------------------------------------------------------------------------- directory


class UnitCreatedData(EventData):
    unit_id: Identifier
    parent_id: Identifier | None = None
    name: str = Field(min_length=1, max_length=200)
    level: UnitLevel
    path: str


class UnitCreated(EventEnvelope):
    type: Literal["directory.unit_created"] = "directory.unit_created"
    data: UnitCreatedData


class CadreRegisteredData(EventData):
    cadre_id: Identifier
    name: str = Field(min_length=1, max_length=200)
    unit_id: Identifier
    rank: str | None = None
    leader_level: LeaderLevel | None = None
    stationed: bool = False


class CadreRegistered(EventEnvelope):
    type: Literal["directory.cadre_registered"] = "directory.cadre_registered"
    data: CadreRegisteredData


class CadreUpdatedData(EventData):
    """The person's own details changed (a transfer is `cadre_transferred`)."""

    cadre_id: Identifier
    name: str = Field(min_length=1, max_length=200)
    rank: str | None = None
    leader_level: LeaderLevel | None = None
    stationed: bool = False


class CadreUpdated(EventEnvelope):
    type: Literal["directory.cadre_updated"] = "directory.cadre_updated"
    data: CadreUpdatedData


class CadreTransferredData(EventData):
    cadre_id: Identifier
    from_unit_id: Identifier
    to_unit_id: Identifier
    from_unit_path: str
    to_unit_path: str


class CadreTransferred(EventEnvelope):
    type: Literal["directory.cadre_transferred"] = "directory.cadre_transferred"
    data: CadreTransferredData


class CadreDeactivatedData(EventData):
    cadre_id: Identifier
    reason: Reason


class CadreDeactivated(EventEnvelope):
    type: Literal["directory.cadre_deactivated"] = "directory.cadre_deactivated"
    data: CadreDeactivatedData


class RoleData(EventData):
    cadre_id: Identifier
    role: Role
    unit_id: Identifier | None = None
    level: LeaderLevel | None = None


class RoleGranted(EventEnvelope):
    type: Literal["directory.role_granted"] = "directory.role_granted"
    data: RoleData


class RoleRevoked(EventEnvelope):
    type: Literal["directory.role_revoked"] = "directory.role_revoked"
    data: RoleData


class GeofenceSetData(EventData):
    unit_id: Identifier
    fence_id: Identifier
    name: str = Field(default="", max_length=200)
    lat: Latitude
    lon: Longitude
    radius_m: float = Field(gt=0, le=50_000)


class GeofenceSet(EventEnvelope):
    type: Literal["directory.geofence_set"] = "directory.geofence_set"
    data: GeofenceSetData


class WorkdayOverriddenData(EventData):
    """A tenant's own calendar decision on top of the national one; `workday` None removes it."""

    day: date
    workday: bool | None
    note: str = Field(default="", max_length=200)


class WorkdayOverridden(EventEnvelope):
    type: Literal["directory.workday_overridden"] = "directory.workday_overridden"
    data: WorkdayOverriddenData


# --------------------------------------------------------------------------- attendance


class DeviceBoundData(EventData):
    device_id: Identifier
    platform: str | None = None
    approved_by: Identifier | None = None


class DeviceBound(EventEnvelope):
    type: Literal["attendance.device_bound"] = "attendance.device_bound"
    data: DeviceBoundData


class DeviceUnboundData(EventData):
    device_id: Identifier
    reason: Reason
    approved_by: Identifier | None = None


class DeviceUnbound(EventEnvelope):
    type: Literal["attendance.device_unbound"] = "attendance.device_unbound"
    data: DeviceUnboundData


class CheckedInData(EventData):
    """Version 2: flat coordinates named as in the check-in API (v1 nested them)."""

    check_in_id: Identifier
    device_id: Identifier
    mode: CheckInMode
    lat: Latitude
    lon: Longitude
    accuracy_m: float = Field(ge=0, le=100_000)
    note: str = Field(default="", max_length=500)
    branch_activity: bool = False
    destination: str | None = Field(default=None, max_length=200)
    within_geofence: bool | None = None
    late_sync: bool = False
    flags: tuple[FlagReason, ...] = ()


class CheckedIn(EventEnvelope):
    CURRENT_SCHEMA_VERSION: ClassVar[int] = 2
    type: Literal["attendance.checked_in"] = "attendance.checked_in"
    data: CheckedInData


class CheckInFlaggedData(EventData):
    check_in_id: Identifier | None = None
    device_id: Identifier
    reasons: tuple[FlagReason, ...] = Field(min_length=1)
    detail: str = Field(default="", max_length=1000)


class CheckInFlagged(EventEnvelope):
    type: Literal["attendance.check_in_flagged"] = "attendance.check_in_flagged"
    data: CheckInFlaggedData


class ApprovalStep(EventData):
    level: LeaderLevel


class LeaveRequestedData(EventData):
    leave_id: Identifier
    kind: LeaveKind
    starts_on: date
    ends_on: date
    start_half: HalfDay | None = None
    end_half: HalfDay | None = None
    workdays: float = Field(ge=0)
    reason: str = Field(default="", max_length=1000)
    chain: tuple[ApprovalStep, ...] = Field(min_length=1)


class LeaveRequested(EventEnvelope):
    type: Literal["attendance.leave_requested"] = "attendance.leave_requested"
    data: LeaveRequestedData


class LeaveStepApprovedData(EventData):
    leave_id: Identifier
    step: int = Field(ge=0)
    level: LeaderLevel
    approver_id: Identifier
    comment: str = Field(default="", max_length=1000)


class LeaveStepApproved(EventEnvelope):
    type: Literal["attendance.leave_step_approved"] = "attendance.leave_step_approved"
    data: LeaveStepApprovedData


class LeaveApprovedData(EventData):
    leave_id: Identifier
    kind: LeaveKind
    starts_on: date
    ends_on: date
    workdays: float = Field(ge=0)


class LeaveApproved(EventEnvelope):
    type: Literal["attendance.leave_approved"] = "attendance.leave_approved"
    data: LeaveApprovedData


class LeaveRejectedData(EventData):
    leave_id: Identifier
    step: int = Field(ge=0)
    level: LeaderLevel
    approver_id: Identifier
    reason: Reason


class LeaveRejected(EventEnvelope):
    type: Literal["attendance.leave_rejected"] = "attendance.leave_rejected"
    data: LeaveRejectedData


class LeaveCancelledData(EventData):
    leave_id: Identifier
    reason: str = Field(default="", max_length=1000)


class LeaveCancelled(EventEnvelope):
    type: Literal["attendance.leave_cancelled"] = "attendance.leave_cancelled"
    data: LeaveCancelledData


class DayClosedData(EventData):
    day: date
    status: DayStatus
    workday: bool
    modes: tuple[CheckInMode, ...] = ()


class DayClosed(EventEnvelope):
    type: Literal["attendance.day_closed"] = "attendance.day_closed"
    data: DayClosedData


# --------------------------------------------------------------------------- journal


class AttachmentRef(EventData):
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    media_type: str = Field(max_length=100)
    size_bytes: int = Field(ge=0)
    filename: str = Field(default="", max_length=255)


class EntryPostedData(EventData):
    entry_id: Identifier
    day: date
    text: str = Field(max_length=10_000)
    tags: tuple[str, ...] = ()
    attachments: tuple[AttachmentRef, ...] = ()
    revision: int = Field(default=1, ge=1)


class EntryPosted(EventEnvelope):
    type: Literal["journal.entry_posted"] = "journal.entry_posted"
    data: EntryPostedData


class EntryReactedData(EventData):
    entry_id: Identifier
    reaction: Reaction
    reason: Reason
    reactor_level: LeaderLevel
    dimension: Dimension | None = None
    entry_day: date | None = None


class EntryReacted(EventEnvelope):
    type: Literal["journal.entry_reacted"] = "journal.entry_reacted"
    data: EntryReactedData


class ReactionRetractedData(EventData):
    entry_id: Identifier
    reaction: Reaction
    reactor_level: LeaderLevel
    dimension: Dimension | None = None


class ReactionRetracted(EventEnvelope):
    type: Literal["journal.reaction_retracted"] = "journal.reaction_retracted"
    data: ReactionRetractedData


class PeerEndorsedData(EventData):
    endorsement_id: Identifier
    endorser_id: Identifier
    dimension: Dimension
    reason: Reason
    reciprocal: bool = False


class PeerEndorsed(EventEnvelope):
    type: Literal["journal.peer_endorsed"] = "journal.peer_endorsed"
    data: PeerEndorsedData


class JournalMissedData(EventData):
    day: date


class JournalMissed(EventEnvelope):
    type: Literal["journal.journal_missed"] = "journal.journal_missed"
    data: JournalMissedData


class TaskAssignedData(EventData):
    task_id: Identifier
    title: str = Field(min_length=1, max_length=200)
    body: str = Field(default="", max_length=10_000)
    due_at: AwareDatetime
    reward_points: Points
    penalty_points: Points
    dimension: Dimension
    assigner_id: Identifier
    # A unit task fans out into one task per member; they share the unit and group id.
    group_id: Identifier | None = None
    unit_id: Identifier | None = None


class TaskAssigned(EventEnvelope):
    type: Literal["journal.task_assigned"] = "journal.task_assigned"
    data: TaskAssignedData


class TaskCompletedData(EventData):
    task_id: Identifier
    dimension: Dimension
    reward_points: Points
    evidence_entry_id: Identifier | None = None
    evidence_attachment: AttachmentRef | None = None


class TaskCompleted(EventEnvelope):
    type: Literal["journal.task_completed"] = "journal.task_completed"
    data: TaskCompletedData


class TaskGradedData(EventData):
    task_id: Identifier
    quality_pct: float = Field(ge=0, le=100)
    grader_id: Identifier


class TaskGraded(EventEnvelope):
    type: Literal["journal.task_graded"] = "journal.task_graded"
    data: TaskGradedData


class TaskReopenedData(EventData):
    """The assigner sends a completed task back: its completion no longer counts."""

    task_id: Identifier
    reason: Reason
    due_at: AwareDatetime


class TaskReopened(EventEnvelope):
    type: Literal["journal.task_reopened"] = "journal.task_reopened"
    data: TaskReopenedData


class TaskCancelledData(EventData):
    """The task is withdrawn: neither its reward nor its overdue penalty counts."""

    task_id: Identifier
    reason: Reason


class TaskCancelled(EventEnvelope):
    type: Literal["journal.task_cancelled"] = "journal.task_cancelled"
    data: TaskCancelledData


class TaskOverdueData(EventData):
    task_id: Identifier
    due_at: AwareDatetime
    penalty_points: Points
    dimension: Dimension


class TaskOverdue(EventEnvelope):
    type: Literal["journal.task_overdue"] = "journal.task_overdue"
    data: TaskOverdueData


class StudyAssignedData(EventData):
    study_id: Identifier
    title: str = Field(min_length=1, max_length=200)
    party_theory: bool = False
    due_on: date | None = None
    unit_id: Identifier | None = None


class StudyAssigned(EventEnvelope):
    type: Literal["journal.study_assigned"] = "journal.study_assigned"
    data: StudyAssignedData


class StudyCompletedData(EventData):
    study_id: Identifier
    party_theory: bool = False
    minutes: int = Field(default=0, ge=0, le=24 * 60)


class StudyCompleted(EventEnvelope):
    type: Literal["journal.study_completed"] = "journal.study_completed"
    data: StudyCompletedData


# --------------------------------------------------------------------------- scoring


class LightChangedData(EventData):
    previous: Light | None = None
    current: Light
    reasons: tuple[str, ...] = ()
    as_of: date


class LightChanged(EventEnvelope):
    type: Literal["scoring.light_changed"] = "scoring.light_changed"
    data: LightChangedData


class BottomCadre(EventData):
    cadre_id: Identifier
    mentor_id: Identifier | None = None


class RankingPublishedData(EventData):
    unit_id: Identifier
    period: str = Field(pattern=r"^\d{4}(-(\d{2}|Q[1-4]|H[12]))?$")
    generation: int = Field(ge=0)
    showcased: tuple[Identifier, ...] = ()
    bottom: tuple[BottomCadre, ...] = ()


class RankingPublished(EventEnvelope):
    type: Literal["scoring.ranking_published"] = "scoring.ranking_published"
    data: RankingPublishedData


class ContributionVoidedData(EventData):
    voided_event_id: uuid.UUID
    reason: Reason
    voided_by: Identifier


class ContributionVoided(EventEnvelope):
    type: Literal["scoring.contribution_voided"] = "scoring.contribution_voided"
    data: ContributionVoidedData


# --------------------------------------------------------------------------- the union

EVENT_CLASSES: tuple[type[EventEnvelope], ...] = (
    UnitCreated,
    CadreRegistered,
    CadreUpdated,
    CadreTransferred,
    CadreDeactivated,
    RoleGranted,
    RoleRevoked,
    GeofenceSet,
    WorkdayOverridden,
    DeviceBound,
    DeviceUnbound,
    CheckedIn,
    CheckInFlagged,
    LeaveRequested,
    LeaveStepApproved,
    LeaveApproved,
    LeaveRejected,
    LeaveCancelled,
    DayClosed,
    EntryPosted,
    EntryReacted,
    ReactionRetracted,
    PeerEndorsed,
    JournalMissed,
    TaskAssigned,
    TaskCompleted,
    TaskGraded,
    TaskReopened,
    TaskCancelled,
    TaskOverdue,
    StudyAssigned,
    StudyCompleted,
    LightChanged,
    RankingPublished,
    ContributionVoided,
)

AnyEvent = Annotated[
    UnitCreated
    | CadreRegistered
    | CadreUpdated
    | CadreTransferred
    | CadreDeactivated
    | RoleGranted
    | RoleRevoked
    | GeofenceSet
    | WorkdayOverridden
    | DeviceBound
    | DeviceUnbound
    | CheckedIn
    | CheckInFlagged
    | LeaveRequested
    | LeaveStepApproved
    | LeaveApproved
    | LeaveRejected
    | LeaveCancelled
    | DayClosed
    | EntryPosted
    | EntryReacted
    | ReactionRetracted
    | PeerEndorsed
    | JournalMissed
    | TaskAssigned
    | TaskCompleted
    | TaskGraded
    | TaskReopened
    | TaskCancelled
    | TaskOverdue
    | StudyAssigned
    | StudyCompleted
    | LightChanged
    | RankingPublished
    | ContributionVoided,
    Field(discriminator="type"),
]

EVENT_ADAPTER: TypeAdapter[AnyEvent] = TypeAdapter(AnyEvent)

EVENT_TYPES: dict[str, type[EventEnvelope]] = {
    cls.model_fields["type"].default: cls for cls in EVENT_CLASSES
}


# The adapter's validator itself: TypeAdapter.validate_python's own Python wrapper cost a
# twentieth of validating an event, which a replay does for half of what it reads.
_validate_event = EVENT_ADAPTER.validator.validate_python


def parse_event(raw: dict[str, Any]) -> AnyEvent:
    """Validate a full envelope dict at any schema version, upcasting older versions first."""
    type_name = raw.get("type")
    cls = EVENT_TYPES.get(type_name) if isinstance(type_name, str) else None
    # An unknown type is reported by validation; an event at the current version (nearly
    # every one) needs no upcasting.
    if cls is not None and raw.get("schema_version") != cls.CURRENT_SCHEMA_VERSION:
        raw = UPCASTERS.upcast(raw, cls.CURRENT_SCHEMA_VERSION)
    event: AnyEvent = _validate_event(raw)
    return event
