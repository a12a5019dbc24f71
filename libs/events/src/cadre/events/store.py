"""Append-only event store with optimistic concurrency, writing the outbox in the same
transaction (DESIGN section 4)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cadre.events.catalogue import AnyEvent, parse_event
from cadre.events.envelope import EventEnvelope
from cadre.events.tables import OUTBOX_CHANNEL, event_store, outbox
from cadre.events.wire import encode


class ConcurrencyError(Exception):
    """Someone appended to the stream since the caller read it: reload and decide again (409)."""

    def __init__(self, stream_id: str, expected_version: int, actual_version: int | None) -> None:
        actual = "unknown" if actual_version is None else str(actual_version)
        super().__init__(
            f"stream {stream_id!r} is at version {actual}, not the expected {expected_version}"
        )
        self.stream_id = stream_id
        self.expected_version = expected_version
        self.actual_version = actual_version


async def stream_version(session: AsyncSession, stream_id: str) -> int:
    result = await session.execute(
        sa.select(sa.func.coalesce(sa.func.max(event_store.c.stream_version), 0)).where(
            event_store.c.stream_id == stream_id
        )
    )
    return int(result.scalar_one())


async def append(
    session: AsyncSession,
    stream_id: str,
    expected_version: int,
    events: Sequence[EventEnvelope],
) -> int:
    """Append `events` to `stream_id` if it is still at `expected_version` (0 for a new stream).

    Runs inside the caller's transaction so the caller's own state changes, the events and
    their outbox rows commit or roll back together. Returns the new stream version.
    """
    if not events:
        return expected_version
    actual = await stream_version(session, stream_id)
    if actual != expected_version:
        raise ConcurrencyError(stream_id, expected_version, actual)
    event_rows: list[dict[str, Any]] = []
    outbox_rows: list[dict[str, Any]] = []
    for offset, event in enumerate(events, start=1):
        event_rows.append(
            {
                "stream_id": stream_id,
                "stream_version": expected_version + offset,
                "event_id": event.id,
                "event_type": event.type,
                "schema_version": event.schema_version,
                "tenant": event.tenant,
                "subject": event.subject,
                "occurred_at": event.occurred_at,
                "recorded_at": event.recorded_at,
                "envelope": event.model_dump(mode="json"),
            }
        )
        record = encode(event)
        outbox_rows.append(
            {
                "event_id": event.id,
                "topic": record.topic,
                "key": record.key,
                "value": record.value,
                "headers": [[name, value.decode()] for name, value in record.headers],
            }
        )
    try:
        # A savepoint keeps the caller's transaction usable after a lost race.
        async with session.begin_nested():
            await session.execute(sa.insert(event_store), event_rows)
    except IntegrityError as exc:
        if "uq_event_store_stream_version" in str(exc.orig):
            raise ConcurrencyError(stream_id, expected_version, None) from exc
        raise
    await session.execute(sa.insert(outbox), outbox_rows)
    # Delivered at commit only, so the relay never wakes for a rolled-back append.
    await session.execute(sa.select(sa.func.pg_notify(OUTBOX_CHANNEL, "")))
    return expected_version + len(events)


async def append_in_transaction(
    sessions: async_sessionmaker[AsyncSession],
    stream_id: str,
    expected_version: int,
    events: Sequence[EventEnvelope],
) -> int:
    async with sessions() as session, session.begin():
        return await append(session, stream_id, expected_version, events)


async def read_stream(
    session: AsyncSession, stream_id: str, from_version: int = 1
) -> list[AnyEvent]:
    """The stream's events in order, upcast to the current schema versions."""
    result = await session.execute(
        sa.select(event_store.c.envelope)
        .where(event_store.c.stream_id == stream_id, event_store.c.stream_version >= from_version)
        .order_by(event_store.c.stream_version)
    )
    return [parse_event(envelope) for envelope in result.scalars()]
