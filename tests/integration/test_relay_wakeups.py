"""When the relay wakes: on NOTIFY while idle, every `linger_s` while rows keep coming."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from cadre.devstack.testing import eventually, unique_tenant
from cadre.events.relay import OutboxRelay
from cadre.events.samples import sample_event
from cadre.events.store import append_in_transaction

pytestmark = [pytest.mark.integration]

POLL_S = 60.0  # longer than the test: only a notification can wake an idle relay in time


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
    relay = OutboxRelay(
        service="wakeups",
        database_url=url,
        kafka_bootstrap=kafka_bootstrap,
        poll_interval_s=POLL_S,
        linger_s=0.02,
    )
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
