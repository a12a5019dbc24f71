"""The check-in context read stays cheap as a cadre's history grows: the spoofing check's
earlier check-ins at the very spot come from an index, not a scan of the history."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.ext.asyncio import AsyncConnection

from cadre.attendance.adapters import queries
from cadre.devstack.pytest_plugin import DatabaseFactory
from cadre.events.db import alembic_config, create_engine, migrate_async

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]

MIGRATIONS = "cadre.attendance.adapters.migrations"
SPOT_INDEX = "ix_check_ins_cadre_spot"


async def _indexes(connection: AsyncConnection) -> set[str]:
    names = await connection.scalars(
        sa.text("SELECT indexname FROM pg_indexes WHERE tablename = 'check_ins'")
    )
    return set(names)


async def test_a_year_of_history_is_not_read_to_find_check_ins_at_the_same_spot(
    make_database: DatabaseFactory,
) -> None:
    url = await make_database("check-in-context")
    await migrate_async(MIGRATIONS, url)
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            # 200 cadres with a year of check-ins each (about 500), so the planner weighs
            # real statistics.
            await connection.execute(
                sa.text(
                    "INSERT INTO check_ins (tenant, check_in_id, cadre_id, day, occurred_at,"
                    " device_id, mode, lat, lon, accuracy_m, note, late_sync, flags)"
                    " SELECT 't', c || '-' || n, 'c' || c, DATE '2026-01-01' + n / 2,"
                    " TIMESTAMPTZ '2026-01-01 08:00+08' + n * INTERVAL '12 hours',"
                    " 'phone', 'normal', 25 + random() / 100, 106 + random() / 100, 10, '',"
                    " false, '{}'"
                    " FROM generate_series(1, 200) AS c, generate_series(1, 500) AS n"
                )
            )
        async with engine.connect() as connection:
            await connection.execute(sa.text("ANALYZE check_ins"))
            plan = "\n".join(
                await connection.scalars(
                    sa.text("EXPLAIN " + queries.CHECK_IN_CONTEXT_SQL.format(lock="")),
                    {
                        "tenant": "t",
                        "cadre_id": "c7",
                        "at": datetime(2026, 11, 24, 8, tzinfo=UTC),
                        "lat": 25.001,
                        "lon": 106.002,
                    },
                )
            )
        assert SPOT_INDEX in plan, plan
    finally:
        await engine.dispose()


async def test_a_database_from_before_the_index_gets_it(make_database: DatabaseFactory) -> None:
    url = await make_database("check-in-spot-migration")
    await migrate_async(MIGRATIONS, url)
    config = alembic_config(MIGRATIONS, url)
    engine = create_engine(url)
    try:
        await asyncio.to_thread(command.downgrade, config, "att_0001")
        async with engine.connect() as connection:
            assert SPOT_INDEX not in await _indexes(connection)
        await asyncio.to_thread(command.upgrade, config, "heads")
        async with engine.connect() as connection:
            assert SPOT_INDEX in await _indexes(connection)
    finally:
        await engine.dispose()
