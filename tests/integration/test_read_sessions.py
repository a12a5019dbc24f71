"""Read sessions run each statement on its own, without the BEGIN and ROLLBACK a session
otherwise wraps around it, on the same pool as the writing sessions."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from cadre.events.db import read_session_factory, session_factory

pytestmark = pytest.mark.asyncio

# now() is the start of the current transaction: it moves between statements only when each
# statement is a transaction of its own.
_NOW = sa.text("SELECT now()")


async def test_a_read_session_runs_each_statement_in_its_own_transaction(
    spine_db: tuple[str, AsyncEngine],
) -> None:
    async with read_session_factory(spine_db[1])() as session:
        first = await session.scalar(_NOW)
        await asyncio.sleep(0.01)
        second = await session.scalar(_NOW)
    assert first is not None
    assert second is not None
    assert second > first


async def test_a_writing_session_still_holds_one_transaction_across_statements(
    spine_db: tuple[str, AsyncEngine],
) -> None:
    async with session_factory(spine_db[1])() as session:
        first = await session.scalar(_NOW)
        await asyncio.sleep(0.01)
        second = await session.scalar(_NOW)
    assert first == second


async def test_a_connection_returned_by_a_read_session_is_transactional_again(
    spine_db: tuple[str, AsyncEngine],
) -> None:
    engine = spine_db[1]
    for _ in range(3):  # the pool hands the same connections back and forth
        async with read_session_factory(engine)() as session:
            await session.scalar(_NOW)
        async with session_factory(engine)() as session, session.begin():
            first = await session.scalar(_NOW)
            await asyncio.sleep(0.005)
            assert await session.scalar(_NOW) == first
