"""Topic names: one per source service and major version, keyed by subject."""

from __future__ import annotations

PUBLISHING_SERVICES: tuple[str, ...] = ("directory", "attendance", "journal", "scoring")
MAJOR_VERSION = 1
DLQ_SUFFIX = ".dlq"


def events_topic(service: str, major_version: int = MAJOR_VERSION) -> str:
    if service not in PUBLISHING_SERVICES:
        raise ValueError(
            f"{service!r} publishes no events; known: {', '.join(PUBLISHING_SERVICES)}"
        )
    return f"{service}.events.v{major_version}"


def topic_for_type(event_type: str) -> str:
    return events_topic(event_type.split(".", 1)[0])


def dlq_topic(topic: str) -> str:
    return topic + DLQ_SUFFIX


ALL_EVENT_TOPICS: tuple[str, ...] = tuple(events_topic(s) for s in PUBLISHING_SERVICES)
ALL_DLQ_TOPICS: tuple[str, ...] = tuple(dlq_topic(t) for t in ALL_EVENT_TOPICS)
