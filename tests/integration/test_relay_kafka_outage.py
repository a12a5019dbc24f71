"""The relay keeps every event through a Kafka SIGKILL and restart, and the consumer helper
turns the resulting duplicates into exactly-once effects."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from cadre.devstack.infra import create_topics
from cadre.devstack.kafka import KafkaServer
from cadre.devstack.processes import kill_process
from cadre.devstack.testing import (
    Projection,
    eventually,
    no_dead_letters,
    read_topic,
    unique_tenant,
)
from cadre.events.consumer import IdempotentConsumer
from cadre.events.relay import OutboxRelay
from cadre.events.samples import sample_event
from cadre.events.store import append_in_transaction
from cadre.events.tables import outbox
from cadre.events.wire import header_map

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOTAL_STREAMS = 1500
PER_TRANSACTION = 50


def _free_port_pair() -> tuple[int, int]:
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port < 65000:
            with socket.socket() as second:
                try:
                    second.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
            return port, port + 1


@pytest.fixture
def own_kafka(tmp_path: Path) -> Iterator[KafkaServer]:
    """A broker this test may kill: never the shared one."""
    port, controller = _free_port_pair()
    server = KafkaServer(tmp_path / "kafka", port, controller, heap="512m")
    server.start()
    yield server
    server.stop()


async def _pending(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return int(
            await session.scalar(
                sa.select(sa.func.count())
                .select_from(outbox)
                .where(outbox.c.published_at.is_(None))
            )
            or 0
        )


async def test_kafka_sigkill_during_publishing_loses_nothing_and_applies_once(
    own_kafka: KafkaServer,
    spine_db: tuple[str, AsyncEngine],
    spine_sessions: async_sessionmaker[AsyncSession],
    projection: Projection,
) -> None:
    url, _ = spine_db
    await create_topics(own_kafka.bootstrap, ["attendance.events.v1"], partitions=3)
    tenant = unique_tenant()
    relay = OutboxRelay(
        service="outage",
        database_url=url,
        kafka_bootstrap=own_kafka.bootstrap,
        batch_size=200,
        poll_interval_s=0.5,
        send_timeout_s=5,
    )
    relay_task = asyncio.create_task(relay.run())
    appended: set[str] = set()

    async def append_batch(start: int) -> None:
        for i in range(start, start + PER_TRANSACTION):
            event = sample_event("attendance.checked_in", tenant=tenant, subject=f"c-{i % 97}")
            await append_in_transaction(spine_sessions, f"stream-{i}", 0, [event])
            appended.add(str(event.id))

    try:
        third = TOTAL_STREAMS // 3
        for start in range(0, third, PER_TRANSACTION):
            await append_batch(start)
        await eventually(lambda: _published_some(relay), timeout_s=30, message="relay publishing")

        assert own_kafka.process is not None
        kill_process(own_kafka.process)  # SIGKILL while rows are still flowing
        for start in range(third, 2 * third, PER_TRANSACTION):
            await append_batch(start)  # appends keep working while Kafka is down
        await asyncio.sleep(2)
        assert await _pending(spine_sessions) > 0, "rows must wait in the outbox during the outage"

        own_kafka.start()
        for start in range(2 * third, TOTAL_STREAMS, PER_TRANSACTION):
            await append_batch(start)
        await eventually(
            lambda: _none_pending(spine_sessions),
            timeout_s=120,
            message="outbox drained after Kafka restart",
        )
    finally:
        relay.stop()
        await relay_task

    records = await read_topic(own_kafka.bootstrap, "attendance.events.v1", len(appended))
    delivered = {header_map(r.headers)["ce_id"] for r in records}
    assert delivered == appended, f"lost {len(appended - delivered)} events"

    consumer = IdempotentConsumer(
        name="outage", sessions=spine_sessions, apply=projection.apply, dead_letter=no_dead_letters
    )
    for chunk in range(0, len(records), 500):
        await consumer.handle_batch(records[chunk : chunk + 500])
    counts = await projection.applied_counts(tenant)
    assert len(counts) == TOTAL_STREAMS
    assert set(counts.values()) == {1}
    assert consumer.stats["applied"] == TOTAL_STREAMS
    assert consumer.stats["duplicate"] == len(records) - TOTAL_STREAMS


async def _published_some(relay: OutboxRelay) -> bool:
    return relay.published_total > 0


async def _none_pending(sessions: async_sessionmaker[AsyncSession]) -> bool:
    return await _pending(sessions) == 0
