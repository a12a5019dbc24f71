"""Scheduled reminders and daily digests, for one moment `now` (the scheduler's clock,
which tests set). Every reminder's id is derived from what it is about and when, so ticking
twice, or on two instances, reminds once."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cadre.events.vocabulary import LeaderLevel
from cadre.notify.adapters.inbound import RoutingConfig
from cadre.notify.adapters.inbox import Draft, load_preferences, write_notifications
from cadre.notify.adapters.recipients import leaders_over, path_of
from cadre.notify.adapters.tables import (
    REPLICA,
    deliveries,
    journal_days,
    leaves,
    notifications,
    people,
    tasks,
)
from cadre.notify.domain.kinds import Channel, Kind, delivery_id
from cadre.notify.domain.preferences import release_time
from cadre.notify.domain.reminders import (
    ReminderRules,
    approval_reminder_round,
    journal_reminder_day,
    task_reminder_due,
)
from cadre.notify.domain.routing import approvers
from cadre.notify.domain.templates import Language, digest_text

LOOKAHEAD = timedelta(days=10)  # the longest run of days off before a due day


async def tenants(sessions: async_sessionmaker[AsyncSession]) -> list[str]:
    async with sessions() as session:
        return sorted(await session.scalars(sa.select(people.c.tenant).distinct()))


async def reminder_drafts(
    session: AsyncSession, tenant: str, now: datetime, config: RoutingConfig, rules: ReminderRules
) -> list[Draft]:
    zone = config.zone_of(tenant)
    local_now = now.astimezone(zone)
    calendar = await REPLICA.calendar(session, tenant)
    drafts: list[Draft] = []

    day = journal_reminder_day(local_now, calendar, rules)
    if day is not None:
        wrote = sa.select(journal_days.c.cadre_id).where(
            journal_days.c.tenant == tenant, journal_days.c.day == day
        )
        on_leave = sa.select(leaves.c.requester_id).where(
            leaves.c.tenant == tenant,
            leaves.c.approved,
            leaves.c.starts_on <= day,
            leaves.c.ends_on >= day,
        )
        silent = await session.scalars(
            sa.select(people.c.cadre_id).where(
                people.c.tenant == tenant,
                people.c.active,
                people.c.registered_on <= day,
                people.c.cadre_id.not_in(wrote),
                people.c.cadre_id.not_in(on_leave),
            )
        )
        source = f"remind-journal:{day.isoformat()}"
        drafts += [
            Draft(tenant, cadre, Kind.REMIND_JOURNAL, source, "reminder", {"day": day.isoformat()})
            for cadre in silent
        ]

    waiting = (
        await session.execute(
            sa.select(leaves).where(
                leaves.c.tenant == tenant,
                leaves.c.open,
                leaves.c.waiting_since <= now - rules.approval_after,
            )
        )
    ).all()
    for leave in waiting:
        if leave.step >= len(leave.chain):
            continue
        rounds = approval_reminder_round(leave.waiting_since, now, rules)
        if rounds is None:
            continue
        path = await path_of(session, tenant, leave.requester_id, "")
        if not path:
            continue
        deciders = approvers(
            await leaders_over(session, tenant, path),
            LeaderLevel(leave.chain[leave.step]),
            path,
            leave.requester_id,
        )
        hours = int(rounds * rules.approval_after.total_seconds() // 3600)
        source = f"remind-approval:{leave.leave_id}:{leave.step}:{rounds}"
        params = {"leave_id": leave.leave_id, "requester_id": leave.requester_id, "hours": hours}
        drafts += [
            Draft(tenant, who, Kind.REMIND_APPROVAL, source, "reminder", params) for who in deciders
        ]

    soon = (
        await session.execute(
            sa.select(tasks).where(
                tasks.c.tenant == tenant,
                tasks.c.open,
                tasks.c.due_at > now,
                tasks.c.due_at <= now + LOOKAHEAD,
            )
        )
    ).all()
    for task in soon:
        if task_reminder_due(task.due_at.astimezone(zone), local_now, calendar, rules):
            source = f"remind-task:{task.task_id}:{task.due_at.isoformat()}"
            params = {
                "task_id": task.task_id,
                "title": task.title,
                "due_at": task.due_at.isoformat(),
            }
            drafts.append(
                Draft(tenant, task.assignee_id, Kind.REMIND_TASK_DUE, source, "reminder", params)
            )
    return drafts


async def remind(
    sessions: async_sessionmaker[AsyncSession],
    now: datetime,
    config: RoutingConfig,
    rules: ReminderRules,
) -> int:
    """Write every reminder due at `now`; returns how many were new."""
    written = 0
    for tenant in await tenants(sessions):
        async with sessions() as session, session.begin():
            drafts = await reminder_drafts(session, tenant, now, config, rules)
            written += await write_notifications(
                session, drafts, now, config.zone_of, config.email_enabled
            )
    return written


async def send_digests(
    sessions: async_sessionmaker[AsyncSession], now: datetime, config: RoutingConfig
) -> int:
    """For each person who chose a digest and whose digest time has come today: one email
    with everything held since the last one. Its id names the person and the local day."""
    made = 0
    async with sessions() as session, session.begin():
        held = (
            await session.execute(
                sa.select(deliveries.c.tenant, deliveries.c.recipient_id)
                .where(deliveries.c.status == "held")
                .distinct()
            )
        ).all()
    for tenant, recipient in held:
        async with sessions() as session, session.begin():
            prefs = (await load_preferences(session, tenant, [recipient])).get(recipient)
            zone = config.zone_of(tenant)
            local_now = now.astimezone(zone)
            if prefs is None or not prefs.email or local_now.time() < prefs.digest_at:
                continue
            digest = delivery_id(tenant, recipient, "digest", local_now.date().isoformat())
            items = (
                await session.execute(
                    sa.select(
                        deliveries.c.delivery_id, notifications.c.kind, notifications.c.params
                    )
                    .join(
                        notifications,
                        notifications.c.notification_id == deliveries.c.notification_id,
                    )
                    .where(
                        deliveries.c.tenant == tenant,
                        deliveries.c.recipient_id == recipient,
                        deliveries.c.status == "held",
                    )
                    .order_by(notifications.c.seq)
                    .with_for_update(of=deliveries, skip_locked=True)
                )
            ).all()
            if not items:
                continue
            language: Language = prefs.language
            text = digest_text([(Kind(i.kind), i.params) for i in items], language)
            created = await session.scalar(
                insert(deliveries)
                .values(
                    delivery_id=digest,
                    tenant=tenant,
                    channel=Channel.EMAIL.value,
                    recipient_id=recipient,
                    event_type="digest",
                    target=prefs.email,
                    subject=text.title,
                    payload=text.body,
                    status="pending",
                    next_attempt_at=release_time(local_now, prefs.quiet_hours),
                    created_at=now,
                )
                .on_conflict_do_nothing()
                .returning(deliveries.c.delivery_id)
            )
            if created is None:
                continue  # today's digest went already; the rest waits for tomorrow's
            await session.execute(
                sa.update(deliveries)
                .where(deliveries.c.delivery_id.in_([i.delivery_id for i in items]))
                .values(status="digested", digest_id=digest)
            )
            made += 1
    return made
