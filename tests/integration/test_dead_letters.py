"""A poison message goes to <topic>.dlq with error headers; the partition moves on."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from faststream.kafka import KafkaBroker
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cadre.devstack.pytest_plugin import TopicFactory
from cadre.devstack.testing import Projection, eventually, read_topic, unique_tenant
from cadre.events.consumer import IdempotentConsumer
from cadre.events.faststream_adapter import broker_dead_letter, subscribe_idempotent
from cadre.events.samples import sample_event
from cadre.events.tables import processed_events
from cadre.events.wire import encode, header_map

pytestmark = [pytest.mark.integration]


async def test_poison_and_garbage_are_dead_lettered_and_later_messages_still_apply(
    kafka_bootstrap: str,
    make_topic: TopicFactory,
    spine_sessions: async_sessionmaker[AsyncSession],
    projection: Projection,
) -> None:
    topic = await make_topic("poison", partitions=1)
    tenant = unique_tenant()
    before = sample_event("journal.journal_missed", tenant=tenant, subject="c-1")
    poison = sample_event("journal.journal_missed", tenant=tenant, subject="poison")
    after = [
        sample_event("journal.journal_missed", tenant=tenant, subject=f"c-{i}") for i in range(2, 6)
    ]
    projection.fail_subjects = frozenset({"poison"})

    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for event in [before, poison]:
            record = encode(event)
            await producer.send_and_wait(
                topic, key=b"k", value=record.value, headers=record.headers
            )
        await producer.send_and_wait(
            topic,
            key=b"k",
            value=b"\x00 not an event",
            headers=[("ce_type", b"journal.journal_missed")],
        )
        for event in after:
            record = encode(event)
            await producer.send_and_wait(
                topic, key=b"k", value=record.value, headers=record.headers
            )
    finally:
        await producer.stop()

    broker = KafkaBroker(kafka_bootstrap)
    consumer = IdempotentConsumer(
        name=f"dlq-{uuid.uuid4().hex[:6]}",
        sessions=spine_sessions,
        apply=projection.apply,
        dead_letter=broker_dead_letter(broker),
        max_attempts=3,
        retry_delay_s=0.01,
    )
    subscribe_idempotent(broker, consumer, topic, group_id=consumer.name)
    await broker.start()
    try:
        await eventually(
            lambda: _count(projection, tenant, 1 + len(after)),
            timeout_s=30,
            message="good events on both sides of the poison applied",
        )
        await eventually(
            lambda: _dead_lettered(consumer, 2), timeout_s=10, message="two dead letters"
        )
    finally:
        await broker.stop()

    # Once inside its batch, then max_attempts times on its own once the batch is split.
    assert projection.attempts_on_failures == 1 + 3
    dead = await read_topic(kafka_bootstrap, topic + ".dlq", at_least=2)
    by_type = {header_map(r.headers)["dlq_error_type"]: r for r in dead}
    assert set(by_type) == {"ValueError", "MalformedMessage"}

    poisoned = header_map(by_type["ValueError"].headers)
    assert poisoned["ce_id"] == str(poison.id), "original headers are kept"
    assert poisoned["dlq_error"] == "cannot project poison"
    assert poisoned["dlq_attempts"] == "3"
    assert poisoned["dlq_original_topic"] == topic
    assert poisoned["dlq_original_partition"] == "0"
    assert poisoned["dlq_original_offset"] == "1"
    assert poisoned["dlq_consumer"] == consumer.name
    assert by_type["ValueError"].value == encode(poison).value
    assert by_type["ValueError"].key == b"k"

    garbage = header_map(by_type["MalformedMessage"].headers)
    assert garbage["dlq_attempts"] == "1", "an undecodable record is never retried"
    assert "missing CloudEvents headers" in garbage["dlq_error"]
    assert by_type["MalformedMessage"].value == b"\x00 not an event"

    async with spine_sessions() as session:
        outcomes = dict(
            (
                await session.execute(
                    sa.select(processed_events.c.dedup_key, processed_events.c.outcome).where(
                        processed_events.c.consumer == consumer.name
                    )
                )
            ).all()
        )
    assert outcomes[str(poison.id)] == "dead_lettered"
    assert outcomes[f"{topic}/0/2"] == "dead_lettered"
    assert outcomes[str(after[-1].id)] == "applied"


async def _count(projection: Projection, tenant: str, n: int) -> bool:
    return await projection.count(tenant) == n


async def _dead_lettered(consumer: IdempotentConsumer, n: int) -> bool:
    return consumer.stats["dead_lettered"] == n
