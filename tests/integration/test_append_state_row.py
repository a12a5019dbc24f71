"""An append can carry one row of the caller's own state in the same statement: the row
goes in only with every event and its outbox row, so the two stay atomic even in an
autocommit session, where that statement is the whole write (attendance's check-ins)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
import pytest_asyncio
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from cadre.events.db import read_session_factory
from cadre.events.samples import sample_event
from cadre.events.store import ConcurrencyError, StateRow, append
from cadre.events.tables import event_store, outbox

pytestmark = pytest.mark.asyncio

METADATA = sa.MetaData()
visits = sa.Table(
    "visits",
    METADATA,
    sa.Column("visit_id", sa.Text, primary_key=True),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("lat", sa.Float, nullable=False),
    sa.Column("inside", sa.Boolean, nullable=True),
    sa.Column("note", sa.Text, nullable=True),
    sa.Column("flags", pg.ARRAY(sa.Text), nullable=False),
)


def _visit(visit_id: str, **changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "visit_id": visit_id,
        "day": date(2026, 11, 20),
        "at": datetime(2026, 11, 20, 1, 2, 3, 456789, tzinfo=UTC),
        "lat": 26.5873,
        "inside": None,
        "note": '村委会, "quoted" {braces}',
        "flags": ["outside_geofence", "逗号,"],
    }
    return values | changes


@pytest_asyncio.fixture
async def autocommit(
    spine_db: tuple[str, AsyncEngine],
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = spine_db[1]
    async with engine.begin() as connection:
        await connection.run_sync(METADATA.create_all)
    yield read_session_factory(engine)


async def _counts(sessions: async_sessionmaker[AsyncSession]) -> tuple[int, int, int]:
    async with sessions() as session:
        counted = [
            int(await session.scalar(sa.select(sa.func.count()).select_from(table)) or 0)
            for table in (event_store, outbox, visits)
        ]
    return counted[0], counted[1], counted[2]


async def test_the_row_goes_in_with_the_events_exactly_as_given(
    autocommit: async_sessionmaker[AsyncSession],
) -> None:
    values = _visit("v1")
    async with autocommit() as session:
        version = await append(
            session,
            "visit:v1",
            0,
            [sample_event("attendance.checked_in"), sample_event("attendance.check_in_flagged")],
            state_row=StateRow(visits, values),
        )
    assert version == 2
    assert await _counts(autocommit) == (2, 2, 1)
    async with autocommit() as session:
        stored = (await session.execute(sa.select(visits))).one()._asdict()
    assert stored == values


async def test_an_append_that_loses_the_stream_writes_no_row(
    autocommit: async_sessionmaker[AsyncSession],
) -> None:
    async with autocommit() as session:
        await append(session, "visit:v1", 0, [sample_event("attendance.checked_in")])
        with pytest.raises(ConcurrencyError):
            await append(
                session,
                "visit:v1",
                0,
                [sample_event("attendance.checked_in")],
                state_row=StateRow(visits, _visit("v2")),
            )
    assert await _counts(autocommit) == (1, 1, 0)


async def test_a_row_that_cannot_go_in_takes_the_events_with_it(
    autocommit: async_sessionmaker[AsyncSession],
) -> None:
    async with autocommit() as session:
        await append(
            session,
            "visit:first",
            0,
            [sample_event("attendance.checked_in")],
            state_row=StateRow(visits, _visit("taken")),
        )
        with pytest.raises(IntegrityError):  # the same key: the whole statement fails
            await append(
                session,
                "visit:second",
                0,
                [sample_event("attendance.checked_in")],
                state_row=StateRow(visits, _visit("taken")),
            )
    assert await _counts(autocommit) == (1, 1, 1)
