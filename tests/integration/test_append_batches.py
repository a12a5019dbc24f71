"""Appends of new streams from concurrent requests are written together (`AppendBatcher`):
each caller returns once its own events, outbox rows and state row committed, and a batch
that fails is written again one append at a time, so one bad append fails alone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from cadre.events.db import autocommit_engine
from cadre.events.samples import sample_event
from cadre.events.store import AppendBatcher, ConcurrencyError, StateRow, append_in_transaction
from cadre.events.tables import event_store, outbox

pytestmark = [pytest.mark.integration]

METADATA = sa.MetaData()
visits = sa.Table(
    "batched_visits",
    METADATA,
    sa.Column("visit_id", sa.Text, primary_key=True),
    sa.Column("note", sa.Text, nullable=False),
)


@pytest_asyncio.fixture
async def batcher(spine_db: tuple[str, AsyncEngine]) -> AsyncIterator[AppendBatcher]:
    engine = spine_db[1]
    async with engine.begin() as connection:
        await connection.run_sync(METADATA.create_all)
    yield AppendBatcher(autocommit_engine(engine))


def _row(visit_id: str) -> StateRow:
    return StateRow(visits, {"visit_id": visit_id, "note": f"note {visit_id}"})


async def _counts(engine: AsyncEngine, prefix: str) -> tuple[int, int, int]:
    async with engine.connect() as connection:
        events = await connection.scalar(
            sa.select(sa.func.count())
            .select_from(event_store)
            .where(event_store.c.stream_id.startswith(prefix))
        )
        outboxed = await connection.scalar(
            sa.select(sa.func.count())
            .select_from(outbox.join(event_store, outbox.c.event_id == event_store.c.event_id))
            .where(event_store.c.stream_id.startswith(prefix))
        )
        rows = await connection.scalar(
            sa.select(sa.func.count())
            .select_from(visits)
            .where(visits.c.visit_id.startswith(prefix))
        )
    return int(events or 0), int(outboxed or 0), int(rows or 0)


async def test_concurrent_appends_are_written_together_and_completely(
    batcher: AppendBatcher, spine_db: tuple[str, AsyncEngine]
) -> None:
    await asyncio.gather(
        *(
            batcher.append_new_stream(
                f"many-{i}", [sample_event("journal.journal_missed")], state_row=_row(f"many-{i}")
            )
            for i in range(100)
        )
    )
    assert await _counts(spine_db[1], "many-") == (100, 100, 100)
    assert batcher.appends_written == 100
    assert batcher.batches_written < 10, "written together, not one by one"


async def test_a_lone_append_is_written_at_once(
    batcher: AppendBatcher, spine_db: tuple[str, AsyncEngine]
) -> None:
    two_events = [sample_event("journal.journal_missed"), sample_event("journal.journal_missed")]
    await asyncio.wait_for(batcher.append_new_stream("alone-1", two_events), timeout=5)
    assert (await _counts(spine_db[1], "alone-"))[:2] == (2, 2)


async def test_a_taken_stream_fails_its_own_append_only(
    batcher: AppendBatcher,
    spine_db: tuple[str, AsyncEngine],
    spine_sessions: async_sessionmaker[AsyncSession],
) -> None:
    await append_in_transaction(
        spine_sessions, "taken-3", 0, [sample_event("journal.journal_missed")]
    )
    outcomes = await asyncio.gather(
        *(
            batcher.append_new_stream(
                f"taken-{i}", [sample_event("journal.journal_missed")], state_row=_row(f"taken-{i}")
            )
            for i in range(6)
        ),
        return_exceptions=True,
    )
    assert [type(o).__name__ for o in outcomes] == [
        "NoneType", "NoneType", "NoneType", "ConcurrencyError", "NoneType", "NoneType"
    ]  # fmt: skip
    assert isinstance(outcomes[3], ConcurrencyError)
    # taken-3's first event is there; its second append left nothing behind
    assert await _counts(spine_db[1], "taken-") == (6, 6, 5)


async def test_a_refused_state_row_fails_its_own_append_with_nothing_written(
    batcher: AppendBatcher, spine_db: tuple[str, AsyncEngine]
) -> None:
    await batcher.append_new_stream(
        "dup-0", [sample_event("journal.journal_missed")], state_row=_row("dup-x")
    )
    outcomes = await asyncio.gather(
        *(
            batcher.append_new_stream(
                f"dup-{i}",
                [sample_event("journal.journal_missed")],
                state_row=_row("dup-x" if i == 2 else f"dup-{i}"),
            )
            for i in range(1, 5)
        ),
        return_exceptions=True,
    )
    assert [o is None for o in outcomes] == [True, False, True, True]
    assert isinstance(outcomes[1], IntegrityError)
    assert await _counts(spine_db[1], "dup-") == (4, 4, 4)
