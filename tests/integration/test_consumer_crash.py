"""A consumer process SIGKILLed mid-batch and restarted applies each event exactly once."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncEngine

from cadre.devstack.processes import kill_process, spawn, stop_process
from cadre.devstack.pytest_plugin import TopicFactory
from cadre.devstack.testing import Projection, eventually, unique_tenant
from cadre.events.samples import sample_event
from cadre.events.wire import encode

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WORKER = Path(__file__).parent / "workers" / "slow_consumer.py"
EVENTS = 1200


async def test_consumer_killed_mid_batch_applies_every_event_once_after_restart(
    spine_db: tuple[str, AsyncEngine],
    kafka_bootstrap: str,
    make_topic: TopicFactory,
    projection: Projection,
    tmp_path: Path,
) -> None:
    url, _ = spine_db
    topic = await make_topic("crash", partitions=3)
    tenant = unique_tenant()
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=5)
    await producer.start()
    try:
        for i in range(EVENTS):
            record = encode(
                sample_event("journal.journal_missed", tenant=tenant, subject=f"c-{i % 50}")
            )
            await producer.send(topic, key=record.key, value=record.value, headers=record.headers)
        await producer.flush()
    finally:
        await producer.stop()

    command = [sys.executable, str(WORKER), url, kafka_bootstrap, topic, f"group-{topic}"]
    first = spawn(command, tmp_path / "worker-1.log")
    try:
        await eventually(
            lambda: _at_least(projection, tenant, EVENTS // 4),
            timeout_s=60,
            message="the first worker to apply a quarter of the events",
        )
        kill_process(first)  # SIGKILL: no chance to commit offsets or finish the batch
        killed_at = await projection.count(tenant)
        assert killed_at < EVENTS, "the worker must be killed before it finished"
    finally:
        if first.poll() is None:
            kill_process(first)

    second = spawn(command, tmp_path / "worker-2.log")
    try:
        await eventually(
            lambda: _at_least(projection, tenant, EVENTS),
            timeout_s=120,
            message="the restarted worker to finish",
        )
    finally:
        stop_process(second)

    counts = await projection.applied_counts(tenant)
    assert len(counts) == EVENTS
    twice = {event_id: n for event_id, n in counts.items() if n != 1}
    assert not twice, f"{len(twice)} events applied more than once"


async def _at_least(projection: Projection, tenant: str, n: int) -> bool:
    return await projection.count(tenant) >= n
