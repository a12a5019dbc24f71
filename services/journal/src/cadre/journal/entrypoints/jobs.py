"""The overdue sweep: each open task past its due time gets `journal.task_overdue` once.
The row is locked, marked and its event appended in one transaction, so restarts and
several instances never emit twice (SKIP LOCKED lets instances share the work)."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cadre.events.catalogue import TaskOverdue, TaskOverdueData
from cadre.events.logging import get_logger
from cadre.events.periodic import repeat
from cadre.events.store import append
from cadre.events.vocabulary import Dimension
from cadre.journal.adapters.tables import tasks
from cadre.journal.domain.tasks import TaskStatus
from cadre.journal.entrypoints.tasks import task_stream

log = get_logger(__name__)
BATCH = 500


async def note_overdue(sessions: async_sessionmaker[AsyncSession], now: datetime) -> int:
    """Emit `task_overdue` for every open task due by `now`; returns how many."""
    total = 0
    while True:
        async with sessions() as session, session.begin():
            rows = (
                await session.execute(
                    sa.select(tasks)
                    .where(
                        tasks.c.status == TaskStatus.OPEN.value,
                        sa.not_(tasks.c.overdue_noted),
                        tasks.c.due_at <= now,
                    )
                    .order_by(tasks.c.due_at)
                    .limit(BATCH)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            for row in rows:
                event = TaskOverdue(
                    tenant=row.tenant,
                    subject=row.cadre_id,
                    unit_path=row.unit_path,
                    actor="journal",
                    occurred_at=row.due_at,  # it became overdue then, whenever we noticed
                    data=TaskOverdueData(
                        task_id=row.task_id,
                        due_at=row.due_at,
                        penalty_points=row.penalty_points,
                        dimension=Dimension(row.dimension),
                    ),
                )
                await append(session, task_stream(row.tenant, row.task_id), row.version, [event])
                await session.execute(
                    sa.update(tasks)
                    .where(tasks.c.tenant == row.tenant, tasks.c.task_id == row.task_id)
                    .values(overdue_noted=True, version=row.version + 1)
                )
        total += len(rows)
        if len(rows) < BATCH:
            return total


async def run_overdue_sweep(sessions: async_sessionmaker[AsyncSession], interval_s: float) -> None:
    async def sweep() -> bool:
        noted = await note_overdue(sessions, datetime.now(UTC))
        if noted:
            log.info("tasks overdue", count=noted)
        return False  # note_overdue already works through every batch

    await repeat("overdue-sweep", interval_s, sweep)
