"""append → outbox → Kafka → consumer → projection, on the real servers."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import sqlalchemy as sa
from faststream.kafka import KafkaBroker
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from cadre.devstack.testing import Projection, eventually, unique_tenant
from cadre.events.consumer import IdempotentConsumer
from cadre.events.faststream_adapter import broker_dead_letter, subscribe_idempotent
from cadre.events.relay import OutboxRelay
from cadre.events.samples import sample_event
from cadre.events.store import append_in_transaction, read_stream
from cadre.events.tables import outbox

pytestmark = [pytest.mark.integration]


async def test_appended_events_reach_the_projection_with_envelope_and_headers_intact(
    spine_db: tuple[str, AsyncEngine],
    spine_sessions: async_sessionmaker[AsyncSession],
    kafka_bootstrap: str,
    projection: Projection,
) -> None:
    url, _ = spine_db
    tenant = unique_tenant()
    streams = {
        f"cadre-{i}": [
            sample_event(
                "attendance.checked_in",
                tenant=tenant,
                subject=f"cadre-{i}",
                unit_path=f"/gz/wangmo/unit{i % 3}",
                correlation_id=f"req-{i}",
            ),
            sample_event(
                "attendance.day_closed",
                tenant=tenant,
                subject=f"cadre-{i}",
                unit_path=f"/gz/wangmo/unit{i % 3}",
            ),
        ]
        for i in range(10)
    }
    relay = OutboxRelay(
        service="e2e", database_url=url, kafka_bootstrap=kafka_bootstrap, poll_interval_s=5.0
    )
    relay_task = asyncio.create_task(relay.run())
    broker = KafkaBroker(kafka_bootstrap)
    consumer = IdempotentConsumer(
        name=f"e2e-{uuid.uuid4().hex[:6]}",
        sessions=spine_sessions,
        apply=projection.apply,
        dead_letter=broker_dead_letter(broker),
    )
    subscribe_idempotent(broker, consumer, "attendance.events.v1", group_id=consumer.name)
    await broker.start()
    try:
        for stream_id, events in streams.items():
            version = await append_in_transaction(spine_sessions, stream_id, 0, events)
            assert version == 2
        expected = {e.id: e for events in streams.values() for e in events}

        # The relay is woken by NOTIFY: with a 5 s poll fallback, fast delivery proves LISTEN works.
        await eventually(
            lambda: _count_equals(projection, tenant, len(expected)),
            timeout_s=4.5,
            message="all events projected",
        )

        for envelope_json, headers in await projection.rows(tenant):
            original = expected[uuid.UUID(envelope_json["id"])]
            assert envelope_json == original.model_dump(mode="json")
            assert headers["ce_id"] == str(original.id)
            assert headers["ce_type"] == original.type
            assert headers["ce_tenant"] == tenant
            assert headers["ce_unitpath"] == original.unit_path
            assert headers["ce_subject"] == original.subject
            assert headers["ce_specversion"] == "1.0"
            assert headers.get("ce_correlationid") == original.correlation_id
        assert set((await projection.applied_counts(tenant)).values()) == {1}

        async with spine_sessions() as session:
            assert [e.id for e in await read_stream(session, "cadre-3")] == [
                e.id for e in streams["cadre-3"]
            ]
            pending = await session.scalar(
                sa.select(sa.func.count()).where(outbox.c.published_at.is_(None))
            )
            assert pending == 0
    finally:
        await broker.stop()
        relay.stop()
        await relay_task


async def _count_equals(projection: Projection, tenant: str, expected: int) -> bool:
    return await projection.count(tenant) == expected
