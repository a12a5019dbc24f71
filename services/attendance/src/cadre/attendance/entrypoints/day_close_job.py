"""Closes every cadre's past days: `day_closed` exactly once per cadre and day. It runs at
start (catching up) and then keeps looking, so it closes each day soon after local midnight.
Exactly once holds across restarts and parallel instances because each cadre-day is its
own event stream, appended at expected version 0: a second attempt is a conflict."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cadre.attendance.adapters import queries
from cadre.attendance.adapters.tables import check_ins, day_closes, leaves, people, unit_paths
from cadre.attendance.domain.day_close import close_days, days_to_close
from cadre.attendance.settings import AttendanceSettings
from cadre.events.catalogue import DayClosed, DayClosedData
from cadre.events.context import ChangeContext
from cadre.events.logging import get_logger
from cadre.events.store import ConcurrencyError, append
from cadre.events.vocabulary import CheckInMode

log = get_logger(__name__)
ACTOR = "attendance.day-close"


async def close_through(
    sessions: async_sessionmaker[AsyncSession], last_day: date, catch_up_days: int
) -> int:
    """Close every open cadre-day up to and including `last_day`; returns how many."""
    async with sessions() as session:
        tenants = list((await session.execute(sa.select(people.c.tenant).distinct())).scalars())
    closed = 0
    for tenant in tenants:
        closed += await _close_tenant(sessions, tenant, last_day, catch_up_days)
    return closed


async def _close_tenant(
    sessions: async_sessionmaker[AsyncSession], tenant: str, last_day: date, catch_up_days: int
) -> int:
    first_day = last_day - timedelta(days=catch_up_days - 1)
    async with sessions() as session:
        cadres = (
            await session.execute(
                sa.select(people.c.cadre_id, people.c.registered_on, unit_paths.c.path)
                .join(
                    unit_paths,
                    sa.and_(
                        unit_paths.c.tenant == people.c.tenant,
                        unit_paths.c.unit_id == people.c.unit_id,
                    ),
                    isouter=True,
                )
                .where(people.c.tenant == tenant, people.c.active)
            )
        ).all()
        done = {
            (r.cadre_id, r.day)
            for r in await session.execute(
                sa.select(day_closes.c.cadre_id, day_closes.c.day).where(
                    day_closes.c.tenant == tenant, day_closes.c.day >= first_day
                )
            )
        }
        calendar = await queries.calendar(session, tenant)
        seen: dict[tuple[str, date], set[CheckInMode]] = {}
        for r in await session.execute(
            sa.select(check_ins.c.cadre_id, check_ins.c.day, check_ins.c.mode).where(
                check_ins.c.tenant == tenant, check_ins.c.day.between(first_day, last_day)
            )
        ):
            seen.setdefault((r.cadre_id, r.day), set()).add(CheckInMode(r.mode))
        on_leave: set[tuple[str, date]] = set()
        for r in await session.execute(
            sa.select(leaves.c.cadre_id, leaves.c.starts_on, leaves.c.ends_on).where(
                leaves.c.tenant == tenant,
                leaves.c.status == "approved",
                leaves.c.ends_on >= first_day,
            )
        ):
            day = max(r.starts_on, first_day)
            while day <= min(r.ends_on, last_day):
                on_leave.add((r.cadre_id, day))
                day += timedelta(days=1)
    paths = {c.cadre_id: c.path or "/unknown" for c in cadres}
    registered_on = {c.cadre_id: c.registered_on for c in cadres}
    pending = [
        (cadre, day)
        for cadre, day in days_to_close(
            paths, [first_day + timedelta(days=n) for n in range(catch_up_days)], done
        )
        if day >= registered_on[cadre]
    ]
    days = {day for _, day in pending}
    statuses = close_days(pending, {d: calendar.is_workday(d) for d in days}, seen, on_leave)
    context = ChangeContext(tenant, ACTOR)
    closed = 0
    for (cadre, day), status in statuses.items():
        modes = tuple(sorted(seen.get((cadre, day), ()), key=lambda m: m.value))
        event = DayClosed(
            **context.envelope(cadre, paths[cadre]),
            data=DayClosedData(
                day=day, status=status, workday=calendar.is_workday(day), modes=modes
            ),
        )
        try:
            async with sessions() as session, session.begin():
                await append(session, f"dayclose:{tenant}:{cadre}:{day.isoformat()}", 0, [event])
                await session.execute(
                    sa.insert(day_closes).values(
                        tenant=tenant,
                        cadre_id=cadre,
                        day=day,
                        status=status.value,
                        modes=[m.value for m in modes],
                    )
                )
            closed += 1
        except ConcurrencyError:
            pass  # closed meanwhile by another instance: exactly once holds
    return closed


async def run_day_close(
    sessions: async_sessionmaker[AsyncSession], settings: AttendanceSettings
) -> None:
    zone = ZoneInfo(settings.default_timezone)
    while True:
        yesterday = datetime.now(zone).date() - timedelta(days=1)
        try:
            closed = await close_through(sessions, yesterday, settings.day_close_catch_up_days)
            if closed:
                log.info("days closed", through=yesterday.isoformat(), count=closed)
        except Exception as exc:  # keep the job alive through outages; it catches up next round
            log.warning("day close failed, will retry", error=repr(exc))
        await asyncio.sleep(settings.day_close_interval_s)
