"""When the relay wakes: on NOTIFY while idle, every `linger_s` while rows keep coming; and
when an append notifies: only while a relay sleeps."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from cadre.devstack.testing import eventually, unique_tenant
from cadre.events.db import asyncpg_dsn
from cadre.events.relay import OutboxRelay
from cadre.events.samples import sample_event
from cadre.events.store import append, append_in_transaction
from cadre.events.tables import OUTBOX_CHANNEL, RELAY_ASLEEP_LOCK_KEY

pytestmark = [pytest.mark.integration]

POLL_S = 60.0  # longer than the test: only a notification can wake an idle relay in time


def _relay_polling_rarely(url: str, kafka_bootstrap: str) -> OutboxRelay:
    return OutboxRelay(
        service="wakeups",
        database_url=url,
        kafka_bootstrap=kafka_bootstrap,
        poll_interval_s=POLL_S,
        linger_s=0.02,
    )


async def _append(sessions: async_sessionmaker[AsyncSession], tenant: str, name: str) -> None:
    event = sample_event("journal.journal_missed", tenant=tenant, subject=name)
    await append_in_transaction(sessions, name, 0, [event])


async def test_a_relay_that_was_busy_listens_again_once_idle(
    spine_db: tuple[str, AsyncEngine],
    spine_sessions: async_sessionmaker[AsyncSession],
    kafka_bootstrap: str,
) -> None:
    url, _ = spine_db
    tenant = unique_tenant()
    relay = _relay_polling_rarely(url, kafka_bootstrap)
    task = asyncio.create_task(relay.run())
    try:
        await _append(spine_sessions, tenant, "first")  # idle: the notification wakes it
        await eventually(lambda: _published(relay, 1), timeout_s=10)

        # A steady stream for a second: rows keep waiting after each linger, so it polls.
        began = time.monotonic()
        sent = 1
        while time.monotonic() - began < 1.0:
            await _append(spine_sessions, tenant, f"busy-{sent}")
            sent += 1
        await eventually(lambda: _published(relay, sent), timeout_s=10)

        await asyncio.sleep(0.5)  # idle again
        began = time.monotonic()
        await _append(spine_sessions, tenant, "after")
        await eventually(lambda: _published(relay, sent + 1), timeout_s=10)
        waited = time.monotonic() - began
    finally:
        relay.stop()
        await task
    assert waited < 5, f"an idle relay took {waited:.1f} s to notice a row"


async def _published(relay: OutboxRelay, n: int) -> bool:
    return relay.published_total >= n


async def test_an_append_notifies_only_while_a_relay_sleeps(
    spine_db: tuple[str, AsyncEngine], spine_sessions: async_sessionmaker[AsyncSession]
) -> None:
    url, _ = spine_db
    tenant = unique_tenant()
    listener = await asyncpg.connect(asyncpg_dsn(url))
    sleeping_relay = await asyncpg.connect(asyncpg_dsn(url))
    received: list[str] = []
    try:
        await listener.add_listener(OUTBOX_CHANNEL, lambda *args: received.append(args[2]))
        await _append(spine_sessions, tenant, "no-relay-asleep")
        await asyncio.sleep(0.5)
        assert received == [], "an append notified with no relay asleep"

        locked = await sleeping_relay.fetchval(
            "SELECT pg_try_advisory_lock($1)", RELAY_ASLEEP_LOCK_KEY
        )
        assert locked
        await _append(spine_sessions, tenant, "relay-asleep")
        await eventually(lambda: _received(received, 1), timeout_s=5)
    finally:
        await listener.close()
        await sleeping_relay.close()


async def test_a_relay_does_not_sleep_before_an_unnotified_append_commits(
    spine_db: tuple[str, AsyncEngine],
    spine_sessions: async_sessionmaker[AsyncSession],
    kafka_bootstrap: str,
) -> None:
    """The append below runs while no relay sleeps, so it sends no notification; it commits
    after the relay has started and found the outbox empty. Had the relay gone to sleep
    then, the row would wait for the poll (`POLL_S`)."""
    url, _ = spine_db
    tenant = unique_tenant()
    relay = _relay_polling_rarely(url, kafka_bootstrap)
    task: asyncio.Task[None] | None = None
    try:
        async with spine_sessions() as session, session.begin():
            event = sample_event("journal.journal_missed", tenant=tenant, subject="late")
            await append(session, "late", 0, [event])
            task = asyncio.create_task(relay.run())
            await asyncio.sleep(1.0)  # it connects, leads, finds nothing and tries to sleep
            assert relay.published_total == 0
        began = time.monotonic()
        await eventually(lambda: _published(relay, 1), timeout_s=10)
        waited = time.monotonic() - began
    finally:
        relay.stop()
        if task is not None:
            await task
    assert waited < 5, f"the relay took {waited:.1f} s to notice a row committed unnotified"


async def _received(notifications: list[str], n: int) -> bool:
    return len(notifications) >= n
