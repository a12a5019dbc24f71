"""Relay housekeeping: pruning old published rows, and one active relay per database."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from cadre.devstack.testing import eventually, read_topic, unique_tenant
from cadre.events.consumer import InboundRecord
from cadre.events.db import asyncpg_dsn
from cadre.events.relay import OutboxRelay
from cadre.events.samples import sample_event
from cadre.events.store import append_in_transaction
from cadre.events.tables import event_store, outbox
from cadre.events.wire import header_map

pytestmark = [pytest.mark.integration]


async def test_prune_deletes_only_rows_published_before_the_retention(
    spine_db: tuple[str, AsyncEngine],
    spine_sessions: async_sessionmaker[AsyncSession],
    kafka_bootstrap: str,
) -> None:
    url, engine = spine_db
    for i in range(3):
        await append_in_transaction(
            spine_sessions, f"s-{i}", 0, [sample_event("journal.journal_missed")]
        )
    async with engine.begin() as connection:
        ids = (await connection.execute(sa.select(outbox.c.id).order_by(outbox.c.id))).scalars()
        old, recent, pending = list(ids)
        await connection.execute(
            sa.update(outbox)
            .where(outbox.c.id == old)
            .values(published_at=sa.func.now() - timedelta(days=8))
        )
        await connection.execute(
            sa.update(outbox)
            .where(outbox.c.id == recent)
            .values(published_at=sa.func.now() - timedelta(days=1))
        )

    relay = OutboxRelay(
        service="housekeeping",
        database_url=url,
        kafka_bootstrap=kafka_bootstrap,
        keep_published_for=timedelta(days=7),
    )
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        assert await relay.prune(connection) == 1
    finally:
        await connection.close()

    async with engine.connect() as connection:
        remaining = set((await connection.execute(sa.select(outbox.c.id))).scalars())
        events = await connection.scalar(sa.select(sa.func.count()).select_from(event_store))
    assert remaining == {recent, pending}
    assert events == 3, "the event store keeps every event"


async def test_two_relays_on_one_database_publish_each_row_once(
    spine_db: tuple[str, AsyncEngine],
    spine_sessions: async_sessionmaker[AsyncSession],
    kafka_bootstrap: str,
) -> None:
    url, _ = spine_db
    tenant = unique_tenant()
    relays = [
        OutboxRelay(service=f"replica-{i}", database_url=url, kafka_bootstrap=kafka_bootstrap)
        for i in range(2)
    ]
    tasks = [asyncio.create_task(relay.run()) for relay in relays]
    try:
        for i in range(200):
            event = sample_event("journal.journal_missed", tenant=tenant, subject=f"c-{i}")
            await append_in_transaction(spine_sessions, f"s-{i}", 0, [event])
        await eventually(
            lambda: _all_published(relays, 200), timeout_s=30, message="200 rows published"
        )
    finally:
        for relay in relays:
            relay.stop()
        await asyncio.gather(*tasks)

    assert sorted(relay.published_total for relay in relays) == [0, 200], "one leader at a time"

    def ours(records: list[InboundRecord]) -> list[InboundRecord]:
        return [r for r in records if header_map(r.headers).get("ce_tenant") == tenant]

    records = await read_topic(
        kafka_bootstrap, "journal.events.v1", until=lambda rs: len(ours(rs)) >= 200
    )
    assert len(ours(records)) == 200


async def _all_published(relays: list[OutboxRelay], n: int) -> bool:
    return sum(relay.published_total for relay in relays) >= n
