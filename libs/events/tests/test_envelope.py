"""The envelope and the catalogue: every event type validates, round-trips and is strict."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from cadre.events.catalogue import EVENT_ADAPTER, EVENT_CLASSES, EVENT_TYPES, parse_event
from cadre.events.envelope import new_event_id
from cadre.events.samples import SAMPLE_DATA, all_samples, sample_event

CATALOGUE = {
    "directory": [
        "unit_created",
        "cadre_registered",
        # Added beyond DESIGN's list: details edits and tenant calendar overrides.
        "cadre_updated",
        "cadre_transferred",
        "cadre_deactivated",
        "role_granted",
        "role_revoked",
        "geofence_set",
        "workday_overridden",
    ],
    "attendance": [
        "device_bound",
        "device_unbound",
        "checked_in",
        "check_in_flagged",
        "leave_requested",
        "leave_step_approved",
        "leave_approved",
        "leave_rejected",
        "leave_cancelled",
        "day_closed",
    ],
    "journal": [
        "entry_posted",
        "entry_reacted",
        "reaction_retracted",
        "peer_endorsed",
        "journal_missed",
        "task_assigned",
        "task_completed",
        "task_graded",
        "task_overdue",
        # Issue 5: a task can be reopened or cancelled, "and these are events too".
        "task_reopened",
        "task_cancelled",
        "study_assigned",
        "study_completed",
    ],
    "scoring": ["light_changed", "ranking_published", "contribution_voided"],
}


def test_every_event_named_in_the_design_has_a_model() -> None:
    expected = {f"{service}.{name}" for service, names in CATALOGUE.items() for name in names}
    assert set(EVENT_TYPES) == expected
    assert set(SAMPLE_DATA) == expected
    assert len(EVENT_CLASSES) == len(expected)


def test_event_ids_are_uuid_version_7_and_time_ordered() -> None:
    ids = [new_event_id() for _ in range(200)]
    assert all(i.version == 7 for i in ids)
    assert len(set(ids)) == 200
    assert [i.bytes[:6] for i in ids] == sorted(i.bytes[:6] for i in ids)


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_each_event_round_trips_through_json_to_its_own_class(event_type: str) -> None:
    event = sample_event(event_type)
    parsed = parse_event(event.model_dump(mode="json"))
    assert type(parsed) is EVENT_TYPES[event_type]
    assert parsed == event


def test_source_is_derived_from_the_type_and_must_agree() -> None:
    assert sample_event("journal.entry_posted").source == "journal"
    with pytest.raises(ValidationError, match="source\n  Input should be 'journal'"):
        sample_event("journal.entry_posted", source="attendance")


def test_schema_version_defaults_to_the_current_one_and_no_other_validates() -> None:
    raw = sample_event("attendance.checked_in").model_dump(mode="json")
    del raw["schema_version"]
    assert parse_event(raw).schema_version == 2
    with pytest.raises(ValidationError, match="schema_version\n  Input should be 2"):
        EVENT_ADAPTER.validate_python({**raw, "schema_version": 3})


def test_unknown_type_is_rejected() -> None:
    raw = sample_event("journal.journal_missed").model_dump(mode="json")
    with pytest.raises(ValidationError, match="does not match any of the expected tags"):
        EVENT_ADAPTER.validate_python({**raw, "type": "journal.nonsense"})


def test_unknown_payload_fields_are_rejected() -> None:
    raw = sample_event("journal.journal_missed").model_dump(mode="json")
    raw["data"]["surprise"] = 1
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        parse_event(raw)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tenant", "Not A Slug"),
        ("unit_path", "no-leading-slash"),
        ("occurred_at", datetime(2026, 11, 20, 9, 0)),  # naive: time zone unknown
        ("subject", ""),
    ],
)
def test_envelope_fields_are_validated(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        sample_event("journal.journal_missed", **{field: value})


def test_reasons_are_required_where_the_rules_demand_them() -> None:
    with pytest.raises(ValidationError, match="reason"):
        sample_event(
            "journal.entry_reacted", data={**SAMPLE_DATA["journal.entry_reacted"], "reason": ""}
        )


def test_envelope_defaults() -> None:
    event = sample_event("journal.journal_missed")
    assert isinstance(event.id, uuid.UUID)
    assert event.recorded_at.tzinfo is not None
    assert event.recorded_at <= datetime.now(UTC)
    assert len({e.id for e in all_samples()}) == len(EVENT_TYPES)
