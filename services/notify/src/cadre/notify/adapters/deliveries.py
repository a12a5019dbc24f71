"""The delivery queue. A due delivery is claimed (status `sending`, a lease, the attempt
counted) and committed *before* it is sent, then its outcome is recorded. A process killed
mid-send leaves a `sending` row whose lease runs out: it is marked `uncertain` and not sent
again by itself, because the other side may already have it. That is what makes "never
twice on one channel" hold across crashes; the delivery log shows such rows and an operator
can redeliver them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cadre.notify.adapters.senders import Outcome, Sender
from cadre.notify.adapters.tables import deliveries, delivery_attempts, webhooks
from cadre.notify.domain.webhooks import RetryPolicy

INTERRUPTED = "interrupted: the process stopped during this attempt, so it is not resent by itself"


async def mark_interrupted(session: AsyncSession, now: datetime) -> int:
    rows = (
        await session.execute(
            sa.update(deliveries)
            .where(deliveries.c.status == "sending", deliveries.c.lease_until < now)
            .values(status="uncertain", last_error=INTERRUPTED, lease_until=None)
            .returning(deliveries.c.delivery_id, deliveries.c.attempts)
        )
    ).all()
    if rows:
        await session.execute(
            sa.insert(delivery_attempts),
            [
                {
                    "delivery_id": r.delivery_id,
                    "attempt": r.attempts,
                    "at": now,
                    "ok": False,
                    "error": INTERRUPTED,
                    "duration_ms": 0.0,
                }
                for r in rows
            ],
        )
    return len(rows)


async def claim_due(
    sessions: async_sessionmaker[AsyncSession], now: datetime, limit: int, lease: timedelta
) -> list[Any]:
    async with sessions() as session, session.begin():
        await mark_interrupted(session, now)
        due = (
            await session.execute(
                sa.select(deliveries, webhooks.c.secret)
                .join(
                    webhooks,
                    webhooks.c.subscription_id == deliveries.c.subscription_id,
                    isouter=True,
                )
                .where(deliveries.c.status == "pending", deliveries.c.next_attempt_at <= now)
                .order_by(deliveries.c.next_attempt_at)
                .limit(limit)
                .with_for_update(of=deliveries, skip_locked=True)
            )
        ).all()
        if due:
            await session.execute(
                sa.update(deliveries)
                .where(deliveries.c.delivery_id.in_([r.delivery_id for r in due]))
                .values(
                    status="sending", attempts=deliveries.c.attempts + 1, lease_until=now + lease
                )
            )
        return list(due)


async def record_outcome(
    session: AsyncSession, row: Any, outcome: Outcome, now: datetime, policy: RetryPolicy
) -> str:
    attempt = row.attempts + 1
    await session.execute(
        insert(delivery_attempts)
        .values(
            delivery_id=row.delivery_id,
            attempt=attempt,
            at=now,
            ok=outcome.ok,
            status_code=outcome.status_code,
            error=outcome.error,
            duration_ms=outcome.duration_ms,
        )
        .on_conflict_do_nothing()  # already logged as interrupted (the lease ran out)
    )
    values: dict[str, Any] = {"lease_until": None}
    if outcome.ok:
        values |= {"status": "delivered", "delivered_at": now, "last_error": None}
    else:
        delay = None if outcome.permanent else policy.delay_after(attempt - row.round_start)
        values |= {"last_error": outcome.error}
        if delay is None:
            values["status"] = "dead"
        else:
            values |= {"status": "pending", "next_attempt_at": now + delay}
    await session.execute(
        sa.update(deliveries)
        .where(deliveries.c.delivery_id == row.delivery_id, deliveries.c.status == "sending")
        .values(**values)
    )
    return str(values["status"])


async def deliver_due(
    sessions: async_sessionmaker[AsyncSession],
    senders: Mapping[str, Sender],
    policy: RetryPolicy,
    *,
    now: datetime,
    limit: int = 50,
    lease: timedelta = timedelta(minutes=2),
    concurrency: int = 8,
) -> dict[str, int]:
    """One round: claim what is due, send it, record each outcome; returns counts by status."""
    rows = await claim_due(sessions, now, limit, lease)
    gate = asyncio.Semaphore(concurrency)
    counts: dict[str, int] = {}

    async def one(row: Any) -> None:
        sender = senders.get(row.channel)
        async with gate:
            if sender is None:
                outcome = Outcome(False, 0.0, None, f"channel {row.channel} is not configured")
            else:
                outcome = await sender(row, row.secret)
        async with sessions() as session, session.begin():
            status = await record_outcome(session, row, outcome, datetime.now(now.tzinfo), policy)
        counts[status] = counts.get(status, 0) + 1

    await asyncio.gather(*(one(row) for row in rows))
    return counts


async def redeliver(session: AsyncSession, tenant: str, delivery: uuid.UUID, now: datetime) -> Any:
    """An operator's explicit resend: a new round of attempts, starting now."""
    return (
        await session.execute(
            sa.update(deliveries)
            .where(
                deliveries.c.delivery_id == delivery,
                deliveries.c.tenant == tenant,
                deliveries.c.status.in_(("dead", "uncertain", "delivered")),
            )
            .values(
                status="pending",
                next_attempt_at=now,
                round_start=deliveries.c.attempts,
                last_error=None,
            )
            .returning(deliveries)
        )
    ).first()
