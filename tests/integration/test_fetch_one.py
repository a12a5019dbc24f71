"""`fetch_one` sends a hot statement straight through asyncpg, and behaves as
`connection.execute` would: the same row, the caller's transaction, the same errors."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from cadre.events.db import (
    autocommit_engine,
    direct_connection,
    fetch_one,
    is_infrastructure_error,
    session_factory,
)

pytestmark = pytest.mark.asyncio

_INSERT = sa.text(
    "INSERT INTO fetch_probe (id, note) VALUES (:id, :note) RETURNING id, note, ARRAY[1, 2] AS pair"
)
_COUNT = sa.text("SELECT count(*) FROM fetch_probe")


@pytest.fixture
async def engine(spine_db: tuple[str, AsyncEngine]) -> AsyncEngine:
    async with spine_db[1].begin() as connection:
        await connection.execute(
            sa.text("CREATE TABLE fetch_probe (id int PRIMARY KEY, note text)")
        )
    return spine_db[1]


async def test_it_gives_the_row_by_column_name_on_an_autocommit_connection(
    engine: AsyncEngine,
) -> None:
    async with autocommit_engine(engine).connect() as connection:
        row = await fetch_one(connection, _INSERT, {"id": 1, "note": "first"})
        assert row is not None
        assert (row["id"], row["note"], list(row["pair"])) == (1, "first", [1, 2])
        # autocommit: it is in the table for everyone at once
        async with engine.connect() as other:
            assert await other.scalar(_COUNT) == 1


async def test_a_first_statement_of_a_transaction_is_inside_it(engine: AsyncEngine) -> None:
    # SQLAlchemy begins the driver's transaction at its first statement; were `fetch_one`
    # to go straight to asyncpg before that, this insert would outlive the rollback.
    async with session_factory(engine)() as session, session.begin():
        connection = await session.connection()
        assert await fetch_one(connection, _INSERT, {"id": 2, "note": "undone"}) is not None
        assert await fetch_one(connection, _INSERT, {"id": 3, "note": "undone"}) is not None
        await session.rollback()
    async with engine.connect() as other:
        assert await other.scalar(_COUNT) == 0


async def test_a_constraint_violation_is_sqlalchemys_integrity_error(engine: AsyncEngine) -> None:
    async with autocommit_engine(engine).connect() as connection:
        await fetch_one(connection, _INSERT, {"id": 4, "note": "taken"})
        with pytest.raises(IntegrityError) as raised:
            await fetch_one(connection, _INSERT, {"id": 4, "note": "again"})
    assert not is_infrastructure_error(raised.value)  # a bad write, not an outage


async def test_a_lost_connection_is_an_infrastructure_error_and_leaves_the_pool(
    engine: AsyncEngine,
) -> None:
    async with autocommit_engine(engine).connect() as connection:
        backend = await connection.scalar(sa.text("SELECT pg_backend_pid()"))
        async with engine.connect() as killer:
            await killer.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
        with pytest.raises(DBAPIError) as raised:
            await fetch_one(connection, _INSERT, {"id": 5, "note": "lost"})
    assert is_infrastructure_error(raised.value)
    # The pool hands out a working connection afterwards, not the dead one.
    async with autocommit_engine(engine).connect() as connection:
        assert await fetch_one(connection, _INSERT, {"id": 6, "note": "after"}) is not None


async def test_a_direct_connection_commits_each_statement_and_returns_to_the_pool(
    engine: AsyncEngine,
) -> None:
    async with direct_connection(engine) as connection:
        row = await fetch_one(connection, _INSERT, {"id": 7, "note": "direct"})
        assert row is not None
        assert (row["id"], row["note"]) == (7, "direct")
        async with engine.connect() as other:
            assert await other.scalar(_COUNT) == 1
    assert engine.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_a_direct_connection_raises_the_same_errors(engine: AsyncEngine) -> None:
    async with direct_connection(engine) as connection:
        await fetch_one(connection, _INSERT, {"id": 8, "note": "taken"})
        with pytest.raises(IntegrityError):
            await fetch_one(connection, _INSERT, {"id": 8, "note": "again"})


async def test_a_lost_direct_connection_leaves_the_pool(engine: AsyncEngine) -> None:
    async with direct_connection(engine) as connection:
        backend = connection.driver.get_server_pid()
        async with engine.connect() as killer:
            await killer.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
        with pytest.raises(DBAPIError) as raised:
            await fetch_one(connection, _INSERT, {"id": 9, "note": "lost"})
    assert is_infrastructure_error(raised.value)
    for _ in range(3):  # whichever pooled connection comes next works
        async with direct_connection(engine) as connection:
            assert connection.driver.get_server_pid() != backend
            assert await fetch_one(connection, _COUNT, {}) is not None
