"""CloudEvents binary mode on Kafka: attributes in ce_* headers, data as the value."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from cadre.events.catalogue import EVENT_TYPES
from cadre.events.envelope import EventEnvelope
from cadre.events.samples import sample_event
from cadre.events.topics import ALL_EVENT_TOPICS, dlq_topic, events_topic, topic_for_type
from cadre.events.wire import (
    ATTRIBUTE_HEADERS,
    MalformedMessage,
    _decode_as_written,
    decode,
    encode,
    envelope_attributes,
    event_from,
    event_type,
    header_layout,
    header_map,
    header_text,
)


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_every_event_survives_the_wire(event_type: str) -> None:
    event = sample_event(event_type)
    record = encode(event)
    assert decode(record.headers, record.value) == event


def test_record_layout() -> None:
    event = sample_event("attendance.checked_in", subject="c-042", correlation_id="req-9")
    record = encode(event)
    headers = header_map(record.headers)
    assert record.topic == "attendance.events.v1"
    assert record.key == b"c-042"
    assert json.loads(record.value) == event.data.model_dump(mode="json")
    assert headers["ce_specversion"] == "1.0"
    assert headers["ce_id"] == str(event.id)
    assert headers["ce_type"] == "attendance.checked_in"
    assert headers["ce_source"] == "attendance"
    assert headers["ce_subject"] == "c-042"
    assert headers["ce_tenant"] == "demo"
    assert headers["ce_unitpath"] == "/gz/wangmo/leye"
    assert headers["ce_schemaversion"] == "2"
    assert headers["ce_correlationid"] == "req-9"
    assert headers["content-type"] == "application/json"
    assert "ce_causationid" not in headers  # absent attributes are omitted, not sent empty


def test_topics_are_one_per_publishing_service_and_major_version() -> None:
    assert ALL_EVENT_TOPICS == (
        "directory.events.v1",
        "attendance.events.v1",
        "journal.events.v1",
        "scoring.events.v1",
    )
    assert topic_for_type("scoring.light_changed") == "scoring.events.v1"
    assert dlq_topic("journal.events.v1") == "journal.events.v1.dlq"
    with pytest.raises(ValueError, match="publishes no events"):
        events_topic("notify")


@pytest.mark.parametrize(
    ("headers", "value", "problem"),
    [
        ([], b"{}", "missing CloudEvents headers"),
        (None, b"{}", "missing CloudEvents headers"),
        ("valid", b"\xff\xfe not json", "not JSON"),
        ("valid", b'{"day": "not a date"}', "day"),
    ],
)
def test_broken_records_raise_malformed_message(
    headers: object, value: bytes, problem: str
) -> None:
    if headers == "valid":
        headers = encode(sample_event("journal.journal_missed")).headers
    with pytest.raises(MalformedMessage, match=problem):
        decode(headers, value)


def test_one_header_is_read_as_the_whole_map_and_decoding_read_it() -> None:
    """A consumer judges a record by its `ce_type` before decoding it: with the header given
    twice, both must take the same one (the last)."""
    record = encode(sample_event("journal.journal_missed"))
    headers = [("ce_type", b"journal.task_assigned"), *record.headers]
    assert header_text(headers, "ce_type") == header_map(headers)["ce_type"]
    assert header_text(headers, "ce_type") == decode(headers, record.value).type
    assert header_text(headers, "ce_missing") is None


def _one_by_one(headers: list[tuple[str, object]]) -> dict[str, str]:
    return {
        field: text
        for field, header in ATTRIBUTE_HEADERS.items()
        if (text := header_map(headers).get(header)) is not None
    }


@pytest.mark.parametrize(
    "change",
    [
        "as sent",
        "correlation and causation",
        "a repeated type, the last wins",
        "an optional header missing",
        "a required header missing",
        "a header that is not UTF-8",
        "a header that is a str",
        "a header that is None",
        "a bytearray",
        "a type that is None after one that is not",
        "a type that is not UTF-8",
        "a str in place of bytes",
        "bytes that are not UTF-8 in place",
    ],
)
def test_envelope_attributes_read_every_kind_of_header_as_header_map_does(change: str) -> None:
    """The usual record is read without a loop over its headers; any other takes the slow
    path, and both give the attributes `header_map` gives."""
    event = sample_event("journal.journal_missed", correlation_id="req-1", causation_id="e-0")
    headers: list[tuple[str, object]] = list(encode(event).headers)
    by_name = dict(headers)
    if change == "correlation and causation":
        assert "ce_causationid" in by_name
    elif change == "a repeated type, the last wins":
        headers = [("ce_type", b"journal.task_assigned"), *headers, ("ce_type", b"x.y")]
    elif change == "an optional header missing":
        headers = [(n, v) for n, v in headers if n != "ce_recordedat"]
    elif change == "a required header missing":
        headers = [(n, v) for n, v in headers if n != "ce_tenant"]
    elif change == "a header that is not UTF-8":
        headers.append(("ce_actor", b"\xffleader"))
    elif change == "a header that is a str":
        headers.append(("ce_subject", "c-7"))
    elif change == "a header that is None":
        headers.append(("ce_causationid", None))
    elif change == "a bytearray":
        headers.append(("ce_id", bytearray(str(event.id).encode())))
    elif change == "a type that is None after one that is not":
        headers.append(("ce_type", None))
    elif change == "a str in place of bytes":
        headers = [
            (n, v.decode() if n == "ce_subject" and isinstance(v, bytes) else v)
            for n, v in by_name.items()
        ]
    elif change == "bytes that are not UTF-8 in place":
        headers = [(n, b"\xff" if n == "ce_tenant" else v) for n, v in by_name.items()]
    elif change == "a type that is not UTF-8":
        headers.append(("ce_type", b"journal.\xffmissed"))
    attributes = envelope_attributes(headers)
    assert attributes == _one_by_one(headers)
    layout = header_layout(headers)  # as a consumer reads a record: once, for both
    as_encoded = [name for name, _ in encode(event).headers]
    assert (layout is not None) == ([name for name, _ in headers] == as_encoded)
    assert envelope_attributes(headers, layout) == attributes
    assert event_type(headers, layout) == attributes.get("type")
    if change == "as sent":
        assert decode(headers, encode(event).value) == event


@pytest.mark.parametrize("correlation", [None, "req-1"])
@pytest.mark.parametrize("causation", [None, "e-0"])
def test_every_layout_encode_writes_is_read_by_position(
    correlation: str | None, causation: str | None
) -> None:
    event = sample_event(
        "journal.journal_missed", correlation_id=correlation, causation_id=causation
    )
    headers = encode(event).headers
    layout = header_layout(headers)
    assert layout is not None
    assert layout.names == tuple(name for name, _ in headers)
    assert envelope_attributes(headers, layout) == _one_by_one(list(headers))
    assert decode(headers, encode(event).value) == event
    reordered = [headers[0], headers[1], headers[3], headers[2], *headers[4:]]
    assert header_layout(reordered) is None
    assert envelope_attributes(reordered) == _one_by_one(list(reordered))


def _outcome(decoding: Callable[[], object]) -> object:
    """What decoding gives: the event with the fields it was given (its own and its
    data's), or the error as text."""
    try:
        event = decoding()
    except MalformedMessage as exc:
        return ("malformed", str(exc))
    assert isinstance(event, EventEnvelope)
    data = event.data
    return (event, event.model_fields_set, getattr(data, "model_fields_set", None))


def _exactly(headers: Any, value: bytes | None) -> object:
    """The outcome of the one-header-at-a-time way, which decides what every record means."""
    return _outcome(lambda: event_from(envelope_attributes(headers), value))


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_every_type_as_encode_writes_it_is_decoded_the_direct_way_to_the_same_event(
    event_type: str,
) -> None:
    record = encode(sample_event(event_type, correlation_id="req-1"))
    layout = header_layout(record.headers)
    assert layout is not None
    assert _decode_as_written(record.headers, record.value, layout) is not None
    decoded = _outcome(lambda: decode(record.headers, record.value))
    assert decoded == _exactly(record.headers, record.value)


def _v1_check_in() -> tuple[list[tuple[str, Any]], bytes]:
    headers = encode(sample_event("attendance.checked_in")).headers
    v1 = {"check_in_id": "ci-1", "device_id": "d-1", "mode": "normal",
          "location": {"lat": 25.5, "lon": 106.1, "accuracy": 8.0}}  # fmt: skip
    return _replace(headers, "ce_schemaversion", b"1"), json.dumps(v1).encode()


def _replace(headers: list[tuple[str, Any]], name: str, value: object) -> list[tuple[str, Any]]:
    return [(n, value if n == name else v) for n, v in headers]


_SAMPLE = encode(sample_event("journal.entry_posted", correlation_id="req-1"))


@pytest.mark.parametrize(
    ("case", "headers", "value"),
    [
        ("an optional header that is None", _replace(_SAMPLE.headers, "ce_correlationid", None),
         _SAMPLE.value),
        ("a required header that is None", _replace(_SAMPLE.headers, "ce_actor", None),
         _SAMPLE.value),
        ("an id that is None", _replace(_SAMPLE.headers, "ce_id", None), _SAMPLE.value),
        ("a type that is a bytearray",
         _replace(_SAMPLE.headers, "ce_type", bytearray(b"journal.entry_posted")),
         _SAMPLE.value),
        ("a header that is not UTF-8", _replace(_SAMPLE.headers, "ce_actor", b"\xffal"),
         _SAMPLE.value),
        ("an id that is not UTF-8", _replace(_SAMPLE.headers, "ce_id", b"\xff" * 36),
         _SAMPLE.value),
        ("an id of 16 bytes, not read as a binary UUID",
         _replace(_SAMPLE.headers, "ce_id", b"0123456789abcdef"), _SAMPLE.value),
        ("a header that is a str", _replace(_SAMPLE.headers, "ce_subject", "c-7"),
         _SAMPLE.value),
        ("an id that is a str", _replace(_SAMPLE.headers, "ce_id", str(uuid.uuid4())),
         _SAMPLE.value),
        ("an id in capitals",
         _replace(_SAMPLE.headers, "ce_id", str(uuid.uuid4()).upper().encode()), _SAMPLE.value),
        ("an id without dashes", _replace(_SAMPLE.headers, "ce_id", uuid.uuid4().hex.encode()),
         _SAMPLE.value),
        ("an id with its dashes elsewhere",
         _replace(_SAMPLE.headers, "ce_id", b"0123456-789ab-cdef-0123-456789abcdef"),
         _SAMPLE.value),
        ("an id with a letter that is no hex digit",
         _replace(_SAMPLE.headers, "ce_id", b"0123456g-89ab-cdef-0123-456789abcdef"),
         _SAMPLE.value),
        ("a bytearray", _replace(_SAMPLE.headers, "ce_tenant", bytearray(b"demo")),
         _SAMPLE.value),
        ("a source of another service", _replace(_SAMPLE.headers, "ce_source", b"attendance"),
         _SAMPLE.value),
        ("an unknown type", _replace(_SAMPLE.headers, "ce_type", b"journal.entry_burnt"),
         _SAMPLE.value),
        ("a version that is no number", _replace(_SAMPLE.headers, "ce_schemaversion", b"one"),
         _SAMPLE.value),
        ("a newer version", _replace(_SAMPLE.headers, "ce_schemaversion", b"9"),
         _SAMPLE.value),
        ("an older version, upcast", *_v1_check_in()),
        ("data that is not valid", _SAMPLE.headers, b'{"day": "not a date"}'),
        ("data that is not JSON", _SAMPLE.headers, b"\xff\xfe not json"),
        ("data with more after it", _SAMPLE.headers, _SAMPLE.value + b', "x": 1'),
        ("data that is null", _SAMPLE.headers, b"null"),
        ("no data", _SAMPLE.headers, b""),
        ("a tenant that breaks its pattern", _replace(_SAMPLE.headers, "ce_tenant", b"Bad T"),
         _SAMPLE.value),
    ],
)  # fmt: skip
def test_a_record_the_direct_way_refuses_decodes_exactly_as_header_by_header(
    case: str, headers: list[tuple[str, Any]], value: bytes
) -> None:
    assert _outcome(lambda: decode(headers, value)) == _exactly(headers, value), case


def test_the_direct_way_refuses_what_it_cannot_read_as_header_by_header_does() -> None:
    layout = header_layout(_SAMPLE.headers)
    assert layout is not None
    for name, value in (("ce_correlationid", None), ("ce_actor", b"\xffal")):
        headers = _replace(_SAMPLE.headers, name, value)
        assert _decode_as_written(headers, _SAMPLE.value, layout) is None
    v1_headers, v1_value = _v1_check_in()
    v1_layout = header_layout(v1_headers)
    assert v1_layout is not None
    assert _decode_as_written(v1_headers, v1_value, v1_layout) is None
