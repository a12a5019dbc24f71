"""Handler wiring only (in-memory TestKafkaBroker): the adapter registers a batch
subscriber that commits after the batch and hands raw records, headers included, to the
consumer helper. Delivery semantics are tested against real Kafka in tests/integration."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from faststream import AckPolicy
from faststream.kafka import KafkaBroker, TestKafkaBroker

from cadre.events.consumer import IdempotentConsumer, KafkaRecordLike
from cadre.events.faststream_adapter import subscribe_idempotent
from cadre.events.samples import sample_event
from cadre.events.wire import decode, encode


class RecordingConsumer(IdempotentConsumer):
    def __init__(self) -> None:
        self.batches: list[list[KafkaRecordLike]] = []

    async def handle_batch(self, records: Sequence[KafkaRecordLike]) -> None:
        self.batches.append(list(records))


async def test_records_reach_the_helper_with_headers_key_and_value() -> None:
    broker = KafkaBroker()
    consumer = RecordingConsumer()
    subscriber: Any = subscribe_idempotent(broker, consumer, "journal.events.v1", group_id="g")
    event = sample_event("journal.journal_missed")
    record = encode(event)

    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(
            record.value,
            topic=record.topic,
            key=record.key,
            headers={name: value.decode() for name, value in record.headers},
        )

    [[received]] = consumer.batches
    assert received.topic == "journal.events.v1"
    assert received.key == event.subject.encode()
    assert decode(received.headers, received.value) == event
    assert subscriber.ack_policy is AckPolicy.ACK
