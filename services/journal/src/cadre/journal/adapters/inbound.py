"""What the journal consumes: the directory (its replica of the org tree) and attendance
(approved leave, closed days). A workday closed without an entry, and not on leave, emits
`journal.journal_missed` once: the missed day's row and the event commit together with the
consumer's dedup record, and a second try finds the row."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from cadre.events.catalogue import (
    AnyEvent,
    DayClosed,
    JournalMissed,
    JournalMissedData,
    LeaveApproved,
    LeaveCancelled,
)
from cadre.events.consumer import KafkaRecordLike
from cadre.events.db import lock_for_transaction
from cadre.events.envelope import new_event_id
from cadre.events.store import append
from cadre.events.vocabulary import DayStatus
from cadre.journal.adapters.tables import REPLICA, approved_leaves, entries, missed_days


async def lock_day(session: AsyncSession, tenant: str, cadre_id: str, day: date) -> None:
    """Serialise the missed-journal decision with a late entry for the same day."""
    await lock_for_transaction(session, f"journal-day:{tenant}:{cadre_id}:{day.isoformat()}")


async def apply_inbound(session: AsyncSession, event: AnyEvent, _: KafkaRecordLike) -> None:
    if await REPLICA.apply(session, event):
        return
    match event:
        case LeaveApproved(data=data):
            await session.execute(
                insert(approved_leaves)
                .values(
                    tenant=event.tenant,
                    leave_id=data.leave_id,
                    cadre_id=event.subject,
                    starts_on=data.starts_on,
                    ends_on=data.ends_on,
                )
                .on_conflict_do_nothing()
            )
        case LeaveCancelled(data=data):
            await session.execute(
                sa.update(approved_leaves)
                .where(
                    approved_leaves.c.tenant == event.tenant,
                    approved_leaves.c.leave_id == data.leave_id,
                )
                .values(cancelled=True)
            )
        case DayClosed(data=data):
            await _missed_journal(session, event)
        case _:
            pass


async def _missed_journal(session: AsyncSession, event: DayClosed) -> None:
    data, tenant, cadre_id = event.data, event.tenant, event.subject
    if not data.workday or data.status in (DayStatus.ON_LEAVE, DayStatus.HOLIDAY):
        return
    await lock_day(session, tenant, cadre_id, data.day)
    on_leave = await session.scalar(
        sa.select(sa.literal(True)).where(
            approved_leaves.c.tenant == tenant,
            approved_leaves.c.cadre_id == cadre_id,
            approved_leaves.c.starts_on <= data.day,
            approved_leaves.c.ends_on >= data.day,
            sa.not_(approved_leaves.c.cancelled),
        )
    )
    wrote = await session.scalar(
        sa.select(sa.literal(True)).where(
            entries.c.tenant == tenant, entries.c.cadre_id == cadre_id, entries.c.day == data.day
        )
    )
    if on_leave or wrote:
        return
    event_id = new_event_id()
    recorded = await session.scalar(
        insert(missed_days)
        .values(tenant=tenant, cadre_id=cadre_id, day=data.day, event_id=event_id)
        .on_conflict_do_nothing()
        .returning(missed_days.c.event_id)
    )
    if recorded is None:
        return  # already emitted (a second day_closed for the same day)
    missed = JournalMissed(
        id=event_id,
        tenant=tenant,
        subject=cadre_id,
        unit_path=event.unit_path,
        occurred_at=event.occurred_at,
        actor="journal",
        correlation_id=event.correlation_id,
        causation_id=str(event.id),
        data=JournalMissedData(day=data.day),
    )
    await append(session, f"missed:{tenant}:{cadre_id}:{data.day.isoformat()}", 0, [missed])
