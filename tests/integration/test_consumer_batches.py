"""The consumer helper's batch path on the real PostgreSQL: order, dedup within and across
batches, and isolation of a bad event when a bulk apply fails."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence

import pytest
import sqlalchemy as sa
from aiokafka import ConsumerRecord, TopicPartition
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cadre.devstack.pytest_plugin import TopicFactory
from cadre.devstack.testing import no_dead_letters, publish_events
from cadre.events.catalogue import AnyEvent
from cadre.events.consumer import IdempotentConsumer, InboundRecord, KafkaRecordLike
from cadre.events.kafka_loop import BatchConsumerLoop
from cadre.events.samples import sample_event
from cadre.events.tables import processed_events
from cadre.events.wire import encode

pytestmark = [pytest.mark.integration]


def as_records(events: Sequence[AnyEvent], first_offset: int = 0) -> list[InboundRecord]:
    records = []
    for offset, event in enumerate(events, start=first_offset):
        record = encode(event)
        records.append(
            InboundRecord(record.topic, 0, offset, record.key, record.value, tuple(record.headers))
        )
    return records


class Recorder:
    def __init__(self, poison_subject: str | None = None) -> None:
        self.calls: list[list[str]] = []
        self.poison_subject = poison_subject

    async def apply_batch(
        self, session: AsyncSession, items: Sequence[tuple[AnyEvent, KafkaRecordLike]]
    ) -> None:
        if any(event.subject == self.poison_subject for event, _ in items):
            raise ValueError("bad subject in batch")
        self.calls.append([event.subject for event, _ in items])


async def test_a_batch_is_applied_in_order_and_each_event_once(
    spine_sessions: async_sessionmaker[AsyncSession],
) -> None:
    events = [sample_event("journal.journal_missed", subject=f"c-{i}") for i in range(6)]
    recorder = Recorder()
    consumer = IdempotentConsumer(
        name="batches",
        sessions=spine_sessions,
        apply_batch=recorder.apply_batch,
        dead_letter=no_dead_letters,
    )
    records = as_records(events)
    await consumer.handle_batch([*records[:4], records[1]])  # a repeat inside the batch
    await consumer.handle_batch(records)  # a redelivery overlapping the first batch

    assert recorder.calls == [["c-0", "c-1", "c-2", "c-3"], ["c-4", "c-5"]]
    assert consumer.stats == {"applied": 6, "duplicate": 5, "dead_lettered": 0, "ignored": 0}


async def test_a_failing_bulk_apply_is_split_so_only_the_bad_event_is_dead_lettered(
    spine_sessions: async_sessionmaker[AsyncSession],
) -> None:
    events = [sample_event("journal.journal_missed", subject=s) for s in ("a", "bad", "c")]
    recorder = Recorder(poison_subject="bad")
    dead: list[str] = []

    async def dead_letter(
        topic: str, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]
    ) -> None:
        dead.append(dict(headers)["ce_subject"].decode())

    consumer = IdempotentConsumer(
        name="split",
        sessions=spine_sessions,
        apply_batch=recorder.apply_batch,
        dead_letter=dead_letter,
        max_attempts=2,
        retry_delay_s=0,
    )
    await consumer.handle_batch(as_records(events))

    assert recorder.calls == [["a"], ["c"]]
    assert dead == ["bad"]
    assert consumer.stats["dead_lettered"] == 1


async def test_self_deduplicating_events_leave_no_dedup_record_and_reach_the_projection_again(
    spine_sessions: async_sessionmaker[AsyncSession],
) -> None:
    keyed = [sample_event("journal.journal_missed", subject=f"k-{i}") for i in range(3)]
    other = sample_event("directory.cadre_updated", subject="d-0")
    recorder = Recorder()
    consumer = IdempotentConsumer(
        name=f"self-dedup-{uuid.uuid4().hex[:8]}",
        sessions=spine_sessions,
        apply_batch=recorder.apply_batch,
        self_deduplicating=lambda event: event.source != "directory",
        dead_letter=no_dead_letters,
    )
    records = as_records([*keyed, other])
    await consumer.handle_batch([*records, records[0]])  # a repeat inside the batch
    await consumer.handle_batch(records)  # a redelivery

    # Within a batch a repeat is still dropped; across batches only the claimed event is:
    # the projection's own keys absorb the others.
    assert recorder.calls == [["k-0", "k-1", "k-2", "d-0"], ["k-0", "k-1", "k-2"]]
    async with spine_sessions() as session:
        claimed = set(
            await session.scalars(
                sa.select(processed_events.c.dedup_key).where(
                    processed_events.c.consumer == consumer.name
                )
            )
        )
    assert claimed == {str(other.id)}


async def test_records_the_consumer_finds_irrelevant_are_settled_without_being_decoded(
    spine_sessions: async_sessionmaker[AsyncSession],
) -> None:
    wanted = sample_event("journal.journal_missed", subject="wanted")
    ignored = sample_event("journal.task_assigned", subject="ignored")
    records = as_records([wanted, ignored, wanted, ignored])
    # An ignored type with a payload that would fail validation: never looked at.
    records[3] = dataclasses.replace(records[3], offset=3, value=b"{not json")
    # No type at all: the filter cannot judge it, so decoding reports it as malformed.
    untyped = dataclasses.replace(
        records[0],
        offset=4,
        headers=tuple(h for h in records[0].headers if h[0] != "ce_type"),
    )
    asked: list[tuple[str, bytes | None]] = []

    def relevant(event_type: str, value: bytes | None) -> bool:
        asked.append((event_type, value))
        return event_type != "journal.task_assigned"

    dead: list[int] = []

    async def dead_letter(
        topic: str, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]
    ) -> None:
        dead.append(int(dict(headers)["dlq_original_offset"]))

    recorder = Recorder()
    consumer = IdempotentConsumer(
        name=f"relevance-{uuid.uuid4().hex[:8]}",
        sessions=spine_sessions,
        apply_batch=recorder.apply_batch,
        relevant=relevant,
        dead_letter=dead_letter,
    )
    await consumer.handle_batch([*records[:2], records[3], untyped])

    assert asked == [
        ("journal.journal_missed", records[0].value),
        ("journal.task_assigned", records[1].value),
        ("journal.task_assigned", b"{not json"),
    ]
    assert recorder.calls == [["wanted"]]
    assert dead == [4]
    assert consumer.stats == {"applied": 1, "duplicate": 0, "dead_lettered": 1, "ignored": 2}


async def test_records_straight_from_aiokafka_reach_the_projection_as_they_came(
    spine_sessions: async_sessionmaker[AsyncSession],
) -> None:
    """The loop hands aiokafka's own records over, and the helper hands each kept one on
    with its event, uncopied."""
    wanted = sample_event("journal.journal_missed", subject="wanted")
    ignored = sample_event("journal.task_assigned", subject="ignored")

    def from_kafka(event: AnyEvent, offset: int) -> ConsumerRecord[bytes, bytes]:
        record = encode(event)
        return ConsumerRecord(
            record.topic, 2, offset, 0, 0, record.key, record.value, None,
            len(record.key), len(record.value), tuple(record.headers),
        )  # fmt: skip

    received: list[KafkaRecordLike] = []

    async def apply_batch(
        session: AsyncSession, items: Sequence[tuple[AnyEvent, KafkaRecordLike]]
    ) -> None:
        received.extend(record for _, record in items)

    consumer = IdempotentConsumer(
        name=f"aiokafka-{uuid.uuid4().hex[:8]}",
        sessions=spine_sessions,
        apply_batch=apply_batch,
        relevant=lambda event_type, value: event_type != "journal.task_assigned",
        dead_letter=no_dead_letters,
    )
    kept = from_kafka(wanted, 8)
    await consumer.handle_batch([from_kafka(ignored, 7), kept])

    assert received == [kept]
    assert consumer.stats["ignored"] == 1


def test_exactly_one_apply_style_is_required(
    spine_sessions: async_sessionmaker[AsyncSession],
) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        IdempotentConsumer(name="x", sessions=spine_sessions, dead_letter=no_dead_letters)


def _hourly_committing_loop(
    sessions: async_sessionmaker[AsyncSession],
    bootstrap: str,
    topic: str,
    group: str,
    recorder: Recorder,
) -> BatchConsumerLoop:
    """A loop over `topic` in batches of 4 whose commit interval no test outlasts."""
    consumer = IdempotentConsumer(
        name=group,
        sessions=sessions,
        apply_batch=recorder.apply_batch,
        dead_letter=no_dead_letters,
    )
    return BatchConsumerLoop(
        consumer,
        bootstrap=bootstrap,
        topics=[topic],
        group_id=group,
        assign_all=True,
        max_records=4,
        commit_interval_s=3600,
    )


async def test_the_loop_commits_offsets_on_its_interval_and_when_it_stops(
    spine_sessions: async_sessionmaker[AsyncSession],
    kafka_bootstrap: str,
    make_topic: TopicFactory,
) -> None:
    topic = await make_topic("commits", partitions=1)
    events = [sample_event("journal.journal_missed", subject=f"c-{i}") for i in range(10)]
    await publish_events(kafka_bootstrap, events, lambda _: topic)
    group = f"commits-{uuid.uuid4().hex[:8]}"
    partition = TopicPartition(topic, 0)

    def loop(recorder: Recorder) -> BatchConsumerLoop:
        return _hourly_committing_loop(spine_sessions, kafka_bootstrap, topic, group, recorder)

    first = loop(Recorder())
    await first.start()
    try:
        while await first.lag():
            await first.poll_once()
        assert await first._kafka.committed(partition) is None, "not yet: the interval is long"
    finally:
        await first.stop()

    recorder = Recorder()
    second = loop(recorder)
    await second.start()
    try:
        assert await second._kafka.committed(partition) == 10, "stop committed what was settled"
        assert await second.lag() == 0
        assert await second.poll_once(timeout_ms=200) == 0
    finally:
        await second.stop()
    assert recorder.calls == []


async def test_an_idle_loop_commits_what_it_settled_once_the_interval_has_passed(
    spine_sessions: async_sessionmaker[AsyncSession],
    kafka_bootstrap: str,
    make_topic: TopicFactory,
) -> None:
    """The last batch before a stream goes quiet is committed by the next empty poll after
    the interval, not left until a record arrives: the group's lag then reads 0."""
    topic = await make_topic("idle-commits", partitions=1)
    events = [sample_event("journal.journal_missed", subject=f"c-{i}") for i in range(10)]
    await publish_events(kafka_bootstrap, events, lambda _: topic)
    group = f"idle-commits-{uuid.uuid4().hex[:8]}"
    partition = TopicPartition(topic, 0)
    loop = _hourly_committing_loop(spine_sessions, kafka_bootstrap, topic, group, Recorder())
    await loop.start()
    try:
        while await loop.lag():
            await loop.poll_once()
        assert await loop.poll_once(timeout_ms=100) == 0
        assert await loop._kafka.committed(partition) is None, "idle, but within the interval"
        loop.commit_interval_s = 0.0  # as if the interval had passed
        assert await loop.poll_once(timeout_ms=100) == 0
        assert await loop._kafka.committed(partition) == 10
    finally:
        await loop.stop()
