"""What notify consumes: every service's events. Each batch, in one transaction with the
consumer's dedup records: keep the replica and the remembered state current, route the
events that concern people to their inboxes (and email), and queue the webhooks whose
subscriptions want the event type."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from cadre.events.catalogue import (
    AnyEvent,
    CadreRegistered,
    CadreUpdated,
    EntryPosted,
    LeaveApproved,
    LeaveCancelled,
    LeaveRejected,
    LeaveRequested,
    LeaveStepApproved,
    RoleGranted,
    RoleRevoked,
    TaskAssigned,
    TaskCancelled,
    TaskCompleted,
    TaskReopened,
)
from cadre.events.consumer import ApplyBatchFn, KafkaRecordLike
from cadre.events.logging import get_logger
from cadre.events.vocabulary import LeaderLevel
from cadre.notify.adapters.inbox import Draft, write_notifications
from cadre.notify.adapters.recipients import resolve
from cadre.notify.adapters.tables import (
    REPLICA,
    deliveries,
    journal_days,
    leaves,
    person_names,
    person_roles,
    tasks,
    webhooks,
)
from cadre.notify.domain.kinds import delivery_id
from cadre.notify.domain.routing import ROUTED_TYPES, Known, routes
from cadre.notify.domain.webhooks import wants

log = get_logger(__name__)


@dataclass(frozen=True)
class RoutingConfig:
    zone_of: Callable[[str], ZoneInfo]
    # Events recorded longer ago than this are history (a consumer group reset, a restore):
    # they update notify's state but tell nobody anything.
    mute_older_than: timedelta
    email_enabled: bool


async def remember(session: AsyncSession, event: AnyEvent) -> None:
    """Keep what later routing and reminders need."""
    tenant = event.tenant
    if await REPLICA.apply(session, event):
        if isinstance(event, CadreRegistered | CadreUpdated):
            person = event.data
            await session.execute(
                insert(person_names)
                .values(tenant=tenant, cadre_id=person.cadre_id, name=person.name)
                .on_conflict_do_update(
                    index_elements=["tenant", "cadre_id"], set_={"name": person.name}
                )
            )
        return
    match event:
        case RoleGranted(data=data):
            await session.execute(
                insert(person_roles)
                .values(tenant=tenant, cadre_id=data.cadre_id, role=data.role.value)
                .on_conflict_do_nothing()
            )
        case RoleRevoked(data=data):
            await session.execute(
                sa.delete(person_roles).where(
                    person_roles.c.tenant == tenant,
                    person_roles.c.cadre_id == data.cadre_id,
                    person_roles.c.role == data.role.value,
                )
            )
        case LeaveRequested(data=data):
            await session.execute(
                insert(leaves)
                .values(
                    tenant=tenant,
                    leave_id=data.leave_id,
                    requester_id=event.subject,
                    chain=[step.level.value for step in data.chain],
                    step=0,
                    waiting_since=event.recorded_at,
                    open=True,
                    starts_on=data.starts_on,
                    ends_on=data.ends_on,
                )
                .on_conflict_do_nothing()
            )
        case LeaveStepApproved(data=data):
            await _update_leave(
                session, tenant, data.leave_id, step=data.step + 1, waiting_since=event.recorded_at
            )
        case LeaveApproved(data=data):
            closed = {"open": False, "approved": True}
            await session.execute(
                insert(leaves)
                .values(
                    tenant=tenant,
                    leave_id=data.leave_id,
                    requester_id=event.subject,
                    chain=[],
                    step=0,
                    waiting_since=event.recorded_at,
                    starts_on=data.starts_on,
                    ends_on=data.ends_on,
                    **closed,
                )
                .on_conflict_do_update(index_elements=["tenant", "leave_id"], set_=closed)
            )
        case LeaveRejected(data=data):
            await _update_leave(session, tenant, data.leave_id, open=False)
        case LeaveCancelled(data=data):
            await _update_leave(session, tenant, data.leave_id, open=False, approved=False)
        case TaskAssigned(data=data):
            values: dict[str, object] = {"due_at": data.due_at, "open": True, "title": data.title}
            await session.execute(
                insert(tasks)
                .values(
                    tenant=tenant,
                    task_id=data.task_id,
                    assignee_id=event.subject,
                    assigner_id=data.assigner_id,
                    **values,
                )
                .on_conflict_do_update(index_elements=["tenant", "task_id"], set_=values)
            )
        case TaskCompleted() | TaskCancelled():
            await _update_task(session, tenant, event.data.task_id, open=False)
        case TaskReopened(data=data):
            await _update_task(session, tenant, data.task_id, open=True, due_at=data.due_at)
        case EntryPosted(data=data):
            await session.execute(
                insert(journal_days)
                .values(tenant=tenant, day=data.day, cadre_id=event.subject)
                .on_conflict_do_nothing()
            )
        case _:
            pass


async def _update_leave(
    session: AsyncSession, tenant: str, leave_id: str, **values: object
) -> None:
    await session.execute(
        sa.update(leaves)
        .where(leaves.c.tenant == tenant, leaves.c.leave_id == leave_id)
        .values(**values)
    )


async def _update_task(session: AsyncSession, tenant: str, task_id: str, **values: object) -> None:
    await session.execute(
        sa.update(tasks)
        .where(tasks.c.tenant == tenant, tasks.c.task_id == task_id)
        .values(**values)
    )


async def known_for(session: AsyncSession, event: AnyEvent) -> Known:
    data = getattr(event, "data", None)
    if event.type == "attendance.leave_step_approved":
        chain = await session.scalar(
            sa.select(leaves.c.chain).where(
                leaves.c.tenant == event.tenant, leaves.c.leave_id == getattr(data, "leave_id", "")
            )
        )
        return Known(leave_chain=tuple(LeaderLevel(level) for level in chain or ()))
    if event.type == "journal.task_overdue":
        row = (
            await session.execute(
                sa.select(tasks.c.assigner_id, tasks.c.title).where(
                    tasks.c.tenant == event.tenant, tasks.c.task_id == getattr(data, "task_id", "")
                )
            )
        ).first()
        if row is not None:
            return Known(task_assigner=row.assigner_id, task_title=row.title)
    return Known()


async def drafts_for(session: AsyncSession, event: AnyEvent) -> list[Draft]:
    drafts: list[Draft] = []
    for route in routes(event, await known_for(session, event)):
        for recipient in await resolve(session, event.tenant, route.audience, event.unit_path):
            drafts.append(
                Draft(event.tenant, recipient, route.kind, str(event.id), event.type, route.params)
            )
    return drafts


async def queue_webhooks(session: AsyncSession, batch: Sequence[AnyEvent], now: datetime) -> int:
    tenants = sorted({e.tenant for e in batch})
    subscriptions = (
        await session.execute(
            sa.select(webhooks).where(webhooks.c.tenant.in_(tenants), webhooks.c.active)
        )
    ).all()
    if not subscriptions:
        return 0
    rows = []
    for event in batch:
        for sub in subscriptions:
            # A subscription receives what was recorded after it was made, not the history.
            if sub.tenant != event.tenant or event.recorded_at < sub.created_at:
                continue
            if not wants(list(sub.event_types), event.type):
                continue
            rows.append(
                {
                    "delivery_id": delivery_id(str(sub.subscription_id), str(event.id)),
                    "tenant": event.tenant,
                    "channel": "webhook",
                    "subscription_id": sub.subscription_id,
                    "event_id": str(event.id),
                    "event_type": event.type,
                    "target": sub.url,
                    "subject": event.type,
                    "payload": event.model_dump_json(),
                    "status": "pending",
                    "next_attempt_at": now,
                    "created_at": now,
                }
            )
    if rows:
        await session.execute(insert(deliveries).values(rows).on_conflict_do_nothing())
    return len(rows)


def inbound_applier(config: RoutingConfig) -> ApplyBatchFn:
    async def apply_batch(
        session: AsyncSession, batch: Sequence[tuple[AnyEvent, KafkaRecordLike]]
    ) -> None:
        now = datetime.now(UTC)
        drafts: list[Draft] = []
        muted = 0
        for event, _ in batch:
            await remember(session, event)
            if event.type not in ROUTED_TYPES:
                continue
            if event.recorded_at < now - config.mute_older_than:
                muted += 1
                continue
            drafts += await drafts_for(session, event)
        await write_notifications(session, drafts, now, config.zone_of, config.email_enabled)
        await queue_webhooks(session, [event for event, _ in batch], now)
        if muted:
            log.info("old events muted", count=muted)

    return apply_batch
