"""Wires an `IdempotentConsumer` into a FastStream Kafka broker: a batch subscriber whose
offsets are committed only after the batch is settled."""

from __future__ import annotations

from typing import Any, Literal

from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from cadre.events.consumer import DeadLetterPublisher, IdempotentConsumer


def broker_dead_letter(broker: KafkaBroker) -> DeadLetterPublisher:
    async def publish(
        topic: str, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]
    ) -> None:
        await broker.publish(
            value or b"",
            topic=topic,
            key=key,
            headers={name: raw.decode("utf-8", errors="replace") for name, raw in headers},
        )

    return publish


async def _leave_body_undecoded(_: Any) -> None:
    """The helper decodes records itself (headers and value), so FastStream need not."""
    return None


def subscribe_idempotent(
    broker: KafkaBroker,
    consumer: IdempotentConsumer,
    *topics: str,
    group_id: str,
    max_records: int = 500,
    auto_offset_reset: Literal["earliest", "latest"] = "earliest",
) -> Any:
    """Register `consumer` for `topics` on `broker`; returns the FastStream subscriber."""
    subscriber = broker.subscriber(
        *topics,
        group_id=group_id,
        batch=True,
        max_records=max_records,
        batch_timeout_ms=100,
        auto_offset_reset=auto_offset_reset,
        ack_policy=AckPolicy.ACK,
        decoder=_leave_body_undecoded,
    )

    @subscriber
    async def handle(_: Any, message: KafkaMessage) -> None:
        raw = message.raw_message
        records = raw if isinstance(raw, tuple | list) else (raw,)
        await consumer.handle_batch(records)  # aiokafka's records, as the helper reads them

    return subscriber
