"""The relay prunes outbox rows published long ago, and only those."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from cadre.events.db import asyncpg_dsn
from cadre.events.relay import OutboxRelay
from cadre.events.samples import sample_event
from cadre.events.store import append_in_transaction
from cadre.events.tables import event_store, outbox

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
