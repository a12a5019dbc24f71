"""Schema versions: an old `checked_in` v1 payload is read as the current v2."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from cadre.events.catalogue import CheckedIn, parse_event
from cadre.events.samples import sample_event
from cadre.events.upcasting import UpcasterRegistry
from cadre.events.wire import decode, encode


def _v1_envelope() -> dict[str, Any]:
    raw = sample_event("attendance.checked_in").model_dump(mode="json")
    raw["schema_version"] = 1
    raw["data"] = {
        "check_in_id": "ci-old",
        "device_id": "dev-1",
        "mode": "normal",
        "location": {"lat": 25.5, "lon": 106.1, "accuracy": 8.0},
        "note": "synced from v1 app",
    }
    return raw


def test_checked_in_is_at_version_2() -> None:
    assert CheckedIn.CURRENT_SCHEMA_VERSION == 2
    assert sample_event("attendance.checked_in").schema_version == 2


def test_v1_check_in_is_upcast_to_v2_on_read() -> None:
    event = parse_event(_v1_envelope())
    assert isinstance(event, CheckedIn)
    assert event.schema_version == 2
    assert (event.data.lat, event.data.lon, event.data.accuracy_m) == (25.5, 106.1, 8.0)
    assert event.data.branch_activity is False
    assert event.data.note == "synced from v1 app"


def test_v1_check_in_from_kafka_headers_is_upcast() -> None:
    current = encode(sample_event("attendance.checked_in"))
    v1_data = _v1_envelope()["data"]
    headers = [(n, b"1" if n == "ce_schemaversion" else v) for n, v in current.headers]
    import json

    event = decode(headers, json.dumps(v1_data).encode())
    assert isinstance(event, CheckedIn)
    assert event.data.accuracy_m == 8.0


def test_a_v1_payload_is_not_accepted_as_v2_without_upcasting() -> None:
    raw = _v1_envelope()
    raw["schema_version"] = 2
    with pytest.raises(ValidationError):
        parse_event(raw)


def test_missing_upcaster_step_is_an_error() -> None:
    registry = UpcasterRegistry()
    with pytest.raises(LookupError, match="no upcaster"):
        registry.upcast(_v1_envelope(), target=2)


def test_an_upcaster_step_cannot_be_registered_twice() -> None:
    registry = UpcasterRegistry()
    registry.register("attendance.checked_in", 1)(lambda data: data)
    with pytest.raises(ValueError, match="already exists"):
        registry.register("attendance.checked_in", 1)(lambda data: data)


def test_a_version_newer_than_the_reader_is_rejected() -> None:
    raw = sample_event("journal.journal_missed").model_dump(mode="json")
    raw["schema_version"] = 9
    with pytest.raises(ValidationError, match="schema_version"):
        parse_event(raw)
