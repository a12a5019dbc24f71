"""A valid example of every event in the catalogue: for tests, benchmarks and the docs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cadre.events.catalogue import EVENT_ADAPTER, EVENT_TYPES, AnyEvent

_SHA = "a" * 64
_DUE = "2026-11-30T09:00:00+08:00"

SAMPLE_DATA: dict[str, dict[str, Any]] = {
    "directory.unit_created": {
        "unit_id": "leye",
        "parent_id": "wangmo",
        "name": "乐业镇",
        "level": "township",
        "path": "/gz/wangmo/leye",
    },
    "directory.cadre_registered": {
        "cadre_id": "c-001",
        "name": "张三",
        "unit_id": "leye",
        "rank": "科员",
        "stationed": True,
    },
    "directory.cadre_transferred": {
        "cadre_id": "c-001",
        "from_unit_id": "leye",
        "to_unit_id": "pingle",
        "from_unit_path": "/gz/wangmo/leye",
        "to_unit_path": "/gz/wangmo/pingle",
    },
    "directory.cadre_updated": {
        "cadre_id": "c-001",
        "name": "张三",
        "rank": "副科",
        "stationed": False,
    },
    "directory.workday_overridden": {"day": "2026-11-23", "workday": False, "note": "防汛调休"},
    "directory.cadre_deactivated": {"cadre_id": "c-001", "reason": "retired"},
    "directory.role_granted": {
        "cadre_id": "c-002",
        "role": "leader",
        "unit_id": "leye",
        "level": "township",
    },
    "directory.role_revoked": {
        "cadre_id": "c-002",
        "role": "leader",
        "unit_id": "leye",
        "level": "township",
    },
    "directory.geofence_set": {
        "unit_id": "leye",
        "fence_id": "office",
        "name": "镇政府",
        "lat": 25.38,
        "lon": 106.09,
        "radius_m": 300,
    },
    "attendance.device_bound": {"device_id": "dev-1", "platform": "android"},
    "attendance.device_unbound": {
        "device_id": "dev-1",
        "reason": "phone replaced",
        "approved_by": "admin",
    },
    "attendance.checked_in": {
        "check_in_id": "ci-1",
        "device_id": "dev-1",
        "mode": "meeting",
        "lat": 25.38,
        "lon": 106.09,
        "accuracy_m": 12.0,
        "note": "党支部会议",
        "branch_activity": True,
        "within_geofence": True,
    },
    "attendance.check_in_flagged": {
        "check_in_id": "ci-1",
        "device_id": "dev-2",
        "reasons": ["device_mismatch"],
        "detail": "bound to dev-1",
    },
    "attendance.leave_requested": {
        "leave_id": "lv-1",
        "kind": "annual",
        "starts_on": "2026-11-23",
        "ends_on": "2026-11-25",
        "workdays": 3,
        "reason": "家事",
        "chain": [{"level": "township"}, {"level": "county"}],
    },
    "attendance.leave_step_approved": {
        "leave_id": "lv-1",
        "step": 0,
        "level": "township",
        "approver_id": "c-002",
    },
    "attendance.leave_approved": {
        "leave_id": "lv-1",
        "kind": "annual",
        "starts_on": "2026-11-23",
        "ends_on": "2026-11-25",
        "workdays": 3,
    },
    "attendance.leave_rejected": {
        "leave_id": "lv-1",
        "step": 1,
        "level": "county",
        "approver_id": "c-003",
        "reason": "工作冲突",
    },
    "attendance.leave_cancelled": {"leave_id": "lv-1", "reason": "plans changed"},
    "attendance.day_closed": {
        "day": "2026-11-20",
        "status": "present",
        "workday": True,
        "modes": ["normal", "meeting"],
    },
    "journal.entry_posted": {
        "entry_id": "e-1",
        "day": "2026-11-20",
        "text": "走访脱贫户三户",
        "tags": ["coordination_success"],
        "attachments": [{"sha256": _SHA, "media_type": "image/jpeg", "size_bytes": 1024}],
    },
    "journal.entry_reacted": {
        "entry_id": "e-1",
        "reaction": "like",
        "reason": "扎实",
        "reactor_level": "county",
        "dimension": "communication",
    },
    "journal.reaction_retracted": {
        "entry_id": "e-1",
        "reaction": "like",
        "reactor_level": "county",
    },
    "journal.peer_endorsed": {
        "endorsement_id": "en-1",
        "endorser_id": "c-004",
        "dimension": "responsibility",
        "reason": "主动帮忙",
    },
    "journal.journal_missed": {"day": "2026-11-19"},
    "journal.task_assigned": {
        "task_id": "t-1",
        "title": "人居环境整治",
        "due_at": _DUE,
        "reward_points": 5,
        "penalty_points": 3,
        "dimension": "responsibility",
        "assigner_id": "c-002",
    },
    "journal.task_completed": {
        "task_id": "t-1",
        "dimension": "responsibility",
        "reward_points": 5,
        "evidence_entry_id": "e-1",
    },
    "journal.task_graded": {"task_id": "t-1", "quality_pct": 80, "grader_id": "c-002"},
    "journal.task_reopened": {"task_id": "t-1", "reason": "照片不清楚", "due_at": _DUE},
    "journal.task_cancelled": {"task_id": "t-2", "reason": "任务已合并"},
    "journal.task_overdue": {
        "task_id": "t-2",
        "due_at": _DUE,
        "penalty_points": 3,
        "dimension": "responsibility",
    },
    "journal.study_assigned": {
        "study_id": "s-1",
        "title": "党的二十届四中全会精神",
        "party_theory": True,
    },
    "journal.study_completed": {"study_id": "s-1", "party_theory": True, "minutes": 45},
    "scoring.light_changed": {
        "previous": "green",
        "current": "yellow",
        "reasons": ["2 absences"],
        "as_of": "2026-11-20",
    },
    "scoring.ranking_published": {
        "unit_id": "leye",
        "period": "2026-Q4",
        "generation": 1,
        "showcased": ["c-001"],
        "bottom": [{"cadre_id": "c-009", "mentor_id": "c-002"}],
    },
    "scoring.contribution_voided": {
        "voided_event_id": "0190f3c2-7a3e-7c4a-9b1e-2f1d5c6e7a8b",
        "reason": "duplicate check-in",
        "voided_by": "admin",
    },
}


def sample_event(event_type: str, **overrides: Any) -> AnyEvent:
    """A valid event of `event_type`; keyword arguments replace envelope fields."""
    envelope: dict[str, Any] = {
        "type": event_type,
        "tenant": "demo",
        "subject": "c-001",
        "unit_path": "/gz/wangmo/leye",
        "occurred_at": datetime(2026, 11, 20, 9, 0, tzinfo=UTC),
        "actor": "c-001",
        "correlation_id": "corr-1",
        "data": SAMPLE_DATA[event_type],
    }
    envelope.update(overrides)
    return EVENT_ADAPTER.validate_python(envelope)


def all_samples() -> list[AnyEvent]:
    return [sample_event(event_type) for event_type in EVENT_TYPES]
