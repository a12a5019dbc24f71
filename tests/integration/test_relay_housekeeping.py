"""Relay housekeeping: pruning old published rows, and one active relay per database."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from functools import partial

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


async def test_the_relay_keeps_using_indexes_after_the_outbox_grows(
    spine_db: tuple[str, AsyncEngine],
    spine_sessions: async_sessionmaker[AsyncSession],
    kafka_bootstrap: str,
) -> None:
    """A fresh database's outbox grows from nothing. PostgreSQL plans a statement generically
    after five runs, and a plan made while the table was tiny kept scanning all of it for
    `id = ANY(...)` as it grew (seen under the ingest benchmark: 17 ms a batch)."""
    url, engine = spine_db
    tenant = unique_tenant()
    async with engine.begin() as connection:  # no ANALYZE to replan it by luck mid-test
        await connection.execute(sa.text("ALTER TABLE outbox SET (autovacuum_enabled = off)"))
    relay = OutboxRelay(service="growth", database_url=url, kafka_bootstrap=kafka_bootstrap)
    task = asyncio.create_task(relay.run())
    try:
        published = 0
        for i, size in enumerate([1] * 20 + [40] * 30):  # one batch each, while it is small
            events = [
                sample_event("journal.journal_missed", tenant=tenant, subject=f"c-{i}-{j}")
                for j in range(size)
            ]
            await append_in_transaction(spine_sessions, f"small-{i}", 0, events)
            published += size
            await eventually(partial(_all_published, [relay], published), timeout_s=30)
        async with engine.begin() as connection:  # weeks of published rows, not analysed
            await connection.execute(
                sa.text(
                    "INSERT INTO outbox (event_id, topic, key, value, headers, published_at)"
                    " SELECT gen_random_uuid(), 'journal.events.v1', '\\x00', '\\x00', '[]',"
                    " now() FROM generate_series(1, 100000)"
                )
            )
        scans_before = await _outbox_seq_scans(engine)
        for i in range(3):
            event = sample_event("journal.journal_missed", tenant=tenant, subject=f"d-{i}")
            await append_in_transaction(spine_sessions, f"large-{i}", 0, [event])
            await eventually(partial(_all_published, [relay], published + 1 + i))
        scans_after = await _outbox_seq_scans(engine)
    finally:
        relay.stop()
        await task
    assert scans_after == scans_before, "the relay scanned the whole outbox"


async def _outbox_seq_scans(engine: AsyncEngine) -> int:
    # A backend reports its statistics at the end of a transaction at most once a second;
    # the relay polls every second, so its scans show within a few.
    await asyncio.sleep(3)
    async with engine.connect() as connection:
        scans = await connection.scalar(
            sa.text("SELECT seq_scan FROM pg_stat_user_tables WHERE relname = 'outbox'")
        )
    return int(scans or 0)
