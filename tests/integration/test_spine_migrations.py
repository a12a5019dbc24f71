"""The spine's migrations on a service database."""

from __future__ import annotations

import asyncpg
import pytest

from cadre.devstack.pytest_plugin import DatabaseFactory
from cadre.events.db import asyncpg_dsn, migrate_async

pytestmark = [pytest.mark.integration]


async def test_analyze_keeps_no_statistics_of_payloads_only_of_what_queries_filter_by(
    make_database: DatabaseFactory,
) -> None:
    url = await make_database("spine_migrations")
    await migrate_async("cadre.attendance.adapters.migrations", url)
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        rows = await connection.fetch(
            "SELECT attrelid::regclass::text AS table_name, attname, attstattarget"
            " FROM pg_attribute"
            " WHERE attrelid IN ('event_store'::regclass, 'outbox'::regclass)"
            " AND attnum > 0 AND NOT attisdropped"
        )
    finally:
        await connection.close()
    without = {(r["table_name"], r["attname"]) for r in rows if r["attstattarget"] == 0}
    assert without == {
        ("event_store", "envelope"),
        ("outbox", "topic"),
        ("outbox", "key"),
        ("outbox", "value"),
        ("outbox", "headers"),
    }
