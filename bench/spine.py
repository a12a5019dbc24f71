"""Event-spine benchmark: outbox relay and idempotent-consumer throughput, beside the raw
aiokafka produce and consume rates measured in the same run on the same servers.

    uv run python -m bench.spine [--events 20000]

It starts its own Kafka, PostgreSQL and Redis (ports 29092, 25432, 26379, data under
.stack-bench/) so a running `make up` is neither disturbed nor measured, and writes
bench/results/spine.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from collections.abc import Sequence
from typing import Any

from bench.stack import bench_infra, raw_read_rate, say, write_result  # isort: skip

import sqlalchemy as sa
from faststream.kafka import KafkaBroker
from sqlalchemy.ext.asyncio import AsyncSession

from bench.machine import describe
from cadre.devstack.infra import Infra, create_databases, create_topics
from cadre.events.catalogue import AnyEvent
from cadre.events.consumer import IdempotentConsumer, KafkaRecordLike
from cadre.events.db import create_engine, session_factory
from cadre.events.faststream_adapter import broker_dead_letter, subscribe_idempotent
from cadre.events.relay import OutboxRelay, make_producer
from cadre.events.samples import sample_event
from cadre.events.store import append
from cadre.events.tables import SPINE_METADATA, outbox
from cadre.events.wire import encode

EVENTS_TOPIC = "attendance.events.v1"


def make_events(n: int) -> list[AnyEvent]:
    return [
        sample_event("attendance.checked_in", tenant="bench", subject=f"cadre-{i % 5000}")
        for i in range(n)
    ]


async def raw_produce(bootstrap: str, topic: str, events: list[AnyEvent]) -> float:
    """The raw aiokafka rate with the relay's producer settings and the same records."""
    records = [encode(e) for e in events]
    producer = make_producer(bootstrap)
    await producer.start()
    try:
        started = time.perf_counter()
        futures = [
            await producer.send(topic, key=r.key, value=r.value, headers=r.headers) for r in records
        ]
        await asyncio.gather(*futures)
        return len(records) / (time.perf_counter() - started)
    finally:
        await producer.stop()


async def fill_outbox(
    database_url: str, events: list[AnyEvent], per_transaction: int = 500
) -> float:
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    started = time.perf_counter()
    for offset in range(0, len(events), per_transaction):
        chunk = events[offset : offset + per_transaction]
        async with sessions() as session, session.begin():
            for i, event in enumerate(chunk):
                await append(session, f"bench-{offset + i}", 0, [event])
    rate = len(events) / (time.perf_counter() - started)
    await engine.dispose()
    return rate


async def relay_drain(database_url: str, bootstrap: str, n: int) -> float:
    engine = create_engine(database_url)
    relay = OutboxRelay(
        service="bench",
        database_url=database_url,
        kafka_bootstrap=bootstrap,
        batch_size=2000,
        poll_interval_s=0.2,
    )
    started = time.perf_counter()
    task = asyncio.create_task(relay.run())
    try:
        while True:
            async with engine.connect() as connection:
                pending = await connection.scalar(
                    sa.select(sa.func.count())
                    .select_from(outbox)
                    .where(outbox.c.published_at.is_(None))
                )
            if pending == 0:
                break
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - started
    finally:
        relay.stop()
        await task
        await engine.dispose()
    assert relay.published_total >= n
    return n / elapsed


async def consumer_apply(database_url: str, bootstrap: str, topic: str, n: int) -> float:
    """Steady-state rate of the helper with a bulk projection, measured from the end of the
    first batch (so the one-off consumer-group join is not counted) to the last event."""
    engine = create_engine(database_url)
    async with engine.begin() as connection:
        await connection.execute(
            sa.text("CREATE TABLE bench_projection (event_id uuid PRIMARY KEY, subject text)")
        )
    insert = sa.text(
        "INSERT INTO bench_projection"
        " SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:subjects AS text[]))"
    )
    all_applied = asyncio.Event()
    applied = 0
    after_first_batch: tuple[int, float] | None = None

    async def apply_batch(
        session: AsyncSession, items: Sequence[tuple[AnyEvent, KafkaRecordLike]]
    ) -> None:
        nonlocal applied, after_first_batch
        if after_first_batch is None:
            after_first_batch = (len(items), time.perf_counter())
        await session.execute(
            insert, {"ids": [e.id for e, _ in items], "subjects": [e.subject for e, _ in items]}
        )
        applied += len(items)
        if applied >= n:
            all_applied.set()

    broker = KafkaBroker(bootstrap, logger=None)
    consumer = IdempotentConsumer(
        name="bench",
        sessions=session_factory(engine),
        apply_batch=apply_batch,
        dead_letter=broker_dead_letter(broker),
    )
    subscribe_idempotent(
        broker, consumer, topic, group_id=f"bench-{uuid.uuid4().hex[:6]}", max_records=1000
    )
    await broker.start()
    try:
        await all_applied.wait()
        finished = time.perf_counter()
    finally:
        await broker.stop()
        await engine.dispose()
    assert after_first_batch is not None
    first_size, first_done = after_first_batch
    return (n - first_size) / (finished - first_done)


async def measure(infra: Infra, events_count: int) -> dict[str, Any]:
    bootstrap = infra.kafka_bootstrap
    database = f"bench_{uuid.uuid4().hex[:8]}"
    await create_databases(infra.pg_url("postgres", "postgresql"), [database])
    database_url = infra.pg_url(database)
    engine = create_engine(database_url)
    async with engine.begin() as connection:
        await connection.run_sync(SPINE_METADATA.create_all)
    await engine.dispose()
    raw_topic = "bench.raw.v1"
    await create_topics(bootstrap, [raw_topic])

    events = make_events(events_count)
    say(f"raw aiokafka produce of {events_count} events")
    raw_produce_rate = await raw_produce(bootstrap, raw_topic, events)
    say(f"  {raw_produce_rate:,.0f} events/s")
    say("raw aiokafka consume")
    raw_consume_rate = await raw_read_rate(
        bootstrap, [raw_topic], events_count, max_records=2000,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )  # fmt: skip
    say(f"  {raw_consume_rate:,.0f} events/s")
    say("appending to the event store (events + outbox, 500 per transaction)")
    append_rate = await fill_outbox(database_url, events)
    say(f"  {append_rate:,.0f} events/s")
    say("relay: PostgreSQL outbox -> Kafka")
    relay_rate = await relay_drain(database_url, bootstrap, events_count)
    say(f"  {relay_rate:,.0f} events/s")
    say("idempotent consumer helper: Kafka -> projection, dedup in the same transaction")
    apply_rate = await consumer_apply(database_url, bootstrap, EVENTS_TOPIC, events_count)
    say(f"  {apply_rate:,.0f} events/s")

    return {
        "benchmark": "spine",
        "machine": describe(),
        "events": events_count,
        "event_store_append_events_per_s": round(append_rate),
        "relay_events_per_s": round(relay_rate),
        "raw_produce_events_per_s": round(raw_produce_rate),
        "relay_vs_raw_produce": round(relay_rate / raw_produce_rate, 3),
        "consumer_apply_events_per_s": round(apply_rate),
        "raw_consume_events_per_s": round(raw_consume_rate),
        "consumer_vs_raw_consume": round(apply_rate / raw_consume_rate, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--events", type=int, default=20_000, help="events to push through each stage"
    )
    args = parser.parse_args()
    with bench_infra() as infra:
        result = asyncio.run(measure(infra, args.events))
    write_result("spine", result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
