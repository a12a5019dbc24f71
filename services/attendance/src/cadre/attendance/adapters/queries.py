"""Reads attendance needs to decide: the replica, a cadre's neighbouring check-ins, leaves."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from cadre.attendance.adapters.tables import (
    REPLICA,
    check_ins,
    fences,
    leaves,
)
from cadre.attendance.domain.geo import Fence
from cadre.attendance.domain.spoofing import Fix
from cadre.events.calendar import WorkdayCalendar
from cadre.events.replica import Person

__all__ = ["Person", "person"]


async def person(
    session: AsyncSession, tenant: str, cadre_id: str, token_unit_path: str = ""
) -> Person | None:
    return await REPLICA.person(session, tenant, cadre_id, token_unit_path)


async def unit_fences(session: AsyncSession, tenant: str, unit_id: str) -> list[Fence]:
    rows = await session.execute(
        sa.select(fences.c.lat, fences.c.lon, fences.c.radius_m).where(
            fences.c.tenant == tenant, fences.c.unit_id == unit_id
        )
    )
    return [Fence(r.lat, r.lon, r.radius_m) for r in rows]


async def calendar(session: AsyncSession, tenant: str) -> WorkdayCalendar:
    return await REPLICA.calendar(session, tenant)


async def neighbours(session: AsyncSession, tenant: str, cadre_id: str, at: datetime) -> list[Fix]:
    """The cadre's check-ins just before and just after `at` in event time."""
    base = sa.select(check_ins.c.occurred_at, check_ins.c.lat, check_ins.c.lon).where(
        check_ins.c.tenant == tenant, check_ins.c.cadre_id == cadre_id
    )
    before = (
        await session.execute(
            base.where(check_ins.c.occurred_at <= at)
            .order_by(check_ins.c.occurred_at.desc())
            .limit(1)
        )
    ).first()
    after = (
        await session.execute(
            base.where(check_ins.c.occurred_at > at).order_by(check_ins.c.occurred_at).limit(1)
        )
    ).first()
    return [Fix(r.occurred_at, r.lat, r.lon) for r in (before, after) if r is not None]


async def same_coordinates(
    session: AsyncSession, tenant: str, cadre_id: str, lat: float, lon: float
) -> list[tuple[float, float, date]]:
    rows = await session.execute(
        sa.select(check_ins.c.lat, check_ins.c.lon, check_ins.c.day)
        .where(
            check_ins.c.tenant == tenant,
            check_ins.c.cadre_id == cadre_id,
            check_ins.c.lat == lat,
            check_ins.c.lon == lon,
        )
        .limit(5)
    )
    return [(r.lat, r.lon, r.day) for r in rows]


async def approved_leave_on(session: AsyncSession, tenant: str, cadre_id: str, day: date) -> bool:
    found = await session.scalar(
        sa.select(sa.func.count())
        .select_from(leaves)
        .where(
            leaves.c.tenant == tenant,
            leaves.c.cadre_id == cadre_id,
            leaves.c.status == "approved",
            leaves.c.starts_on <= day,
            leaves.c.ends_on >= day,
        )
    )
    return bool(found)
