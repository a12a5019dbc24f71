"""Reads attendance needs to decide: the replica, a check-in's context, leaves."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from cadre.attendance.adapters.tables import (
    REPLICA,
)
from cadre.attendance.domain.geo import Fence
from cadre.attendance.domain.spoofing import Fix
from cadre.events.calendar import WorkdayCalendar
from cadre.events.db import DirectConnection, fetch_one
from cadre.events.replica import Person

__all__ = ["BoundDevice", "CheckInContext", "Person", "check_in_context", "person"]


async def person(
    session: AsyncSession, tenant: str, cadre_id: str, token_unit_path: str = ""
) -> Person | None:
    return await REPLICA.person(session, tenant, cadre_id, token_unit_path)


async def calendar(session: AsyncSession, tenant: str) -> WorkdayCalendar:
    return await REPLICA.calendar(session, tenant)


@dataclass(frozen=True)
class BoundDevice:
    """The cadre's `devices` row: `device_id` None means unbound (the next check-in binds)."""

    device_id: str | None
    mismatches: int
    last_mismatch_at: datetime | None


@dataclass(frozen=True)
class CheckInContext:
    """Everything a check-in is judged against, read in one round trip."""

    person: Person
    device: BoundDevice | None
    fences: list[Fence]
    neighbours: list[Fix]  # the cadre's check-ins just before and just after in event time
    same_coordinates: list[tuple[float, float, date]]  # earlier check-ins at the very spot


# One statement instead of six (the device row included): a check-in is the hottest write
# path, and each round trip through SQLAlchemy and asyncpg costs more than the query itself
# (profiled under load).
CHECK_IN_CONTEXT_SQL = """
    SELECT p.unit_id, p.stationed, p.active, p.registered_on, p.leader_level, u.path,
        ARRAY(SELECT ROW(f.lat, f.lon, f.radius_m) FROM fences f
              WHERE f.tenant = p.tenant AND f.unit_id = p.unit_id) AS fences,
        ARRAY((SELECT ROW(c.occurred_at, c.lat, c.lon) FROM check_ins c
               WHERE c.tenant = p.tenant AND c.cadre_id = p.cadre_id AND c.occurred_at <= :at
               ORDER BY c.occurred_at DESC LIMIT 1)
              UNION ALL
              (SELECT ROW(c.occurred_at, c.lat, c.lon) FROM check_ins c
               WHERE c.tenant = p.tenant AND c.cadre_id = p.cadre_id AND c.occurred_at > :at
               ORDER BY c.occurred_at LIMIT 1)) AS neighbours,
        ARRAY(SELECT ROW(c.lat, c.lon, c.day) FROM check_ins c
              WHERE c.tenant = p.tenant AND c.cadre_id = p.cadre_id
                AND c.lat = :lat AND c.lon = :lon
              LIMIT 5) AS same_coordinates,
        (SELECT ROW(d.device_id, d.mismatches, d.last_mismatch_at) FROM devices d
         WHERE d.tenant = p.tenant AND d.cadre_id = p.cadre_id {lock}) AS device
    FROM people p
    LEFT JOIN unit_paths u ON u.tenant = p.tenant AND u.unit_id = p.unit_id
    WHERE p.tenant = :tenant AND p.cadre_id = :cadre_id
    """
_CONTEXT_PARAMETERS = (
    sa.bindparam("at", type_=sa.DateTime(timezone=True)),
    sa.bindparam("lat", type_=sa.Float),
    sa.bindparam("lon", type_=sa.Float),
)
_CHECK_IN_CONTEXT = sa.text(CHECK_IN_CONTEXT_SQL.format(lock="")).bindparams(*_CONTEXT_PARAMETERS)
_CHECK_IN_CONTEXT_LOCKED = sa.text(CHECK_IN_CONTEXT_SQL.format(lock="FOR UPDATE")).bindparams(
    *_CONTEXT_PARAMETERS
)


async def check_in_context(
    connection: AsyncConnection | DirectConnection,
    tenant: str,
    cadre_id: str,
    token_unit_path: str,
    fix: Fix,
    *,
    lock_device: bool,
) -> CheckInContext | None:
    """`lock_device`: lock the device row until the transaction ends (to bind, rebind or
    count a mismatch). Outside a transaction the lock would end with the statement, and
    taking it would still cost a transaction id and a disk flush."""
    row = await fetch_one(
        connection,
        _CHECK_IN_CONTEXT_LOCKED if lock_device else _CHECK_IN_CONTEXT,
        {
            "tenant": tenant,
            "cadre_id": cadre_id,
            "at": fix.occurred_at,
            "lat": fix.lat,
            "lon": fix.lon,
        },
    )
    if row is None:
        return None
    person = Person(
        cadre_id,
        row["unit_id"],
        row["path"] or token_unit_path,  # the replica may not have seen the unit yet
        row["stationed"],
        row["active"],
        row["registered_on"],
        row["leader_level"],
    )
    device = None
    if row["device"] is not None:
        device_id, mismatches, last_mismatch_at = row["device"]
        device = BoundDevice(device_id, mismatches, last_mismatch_at)
    return CheckInContext(
        person=person,
        device=device,
        fences=[Fence(lat, lon, radius_m) for lat, lon, radius_m in row["fences"]],
        neighbours=[Fix(at, lat, lon) for at, lat, lon in row["neighbours"]],
        same_coordinates=[(lat, lon, day) for lat, lon, day in row["same_coordinates"]],
    )


_APPROVED_LEAVE_ON = sa.text(
    "SELECT EXISTS (SELECT 1 FROM leaves WHERE tenant = :tenant AND cadre_id = :cadre_id"
    " AND status = 'approved' AND starts_on <= :day AND ends_on >= :day) AS found"
).bindparams(sa.bindparam("day", type_=sa.Date))


async def approved_leave_on(
    connection: AsyncSession | AsyncConnection | DirectConnection,
    tenant: str,
    cadre_id: str,
    day: date,
) -> bool:
    if isinstance(connection, AsyncSession):
        connection = await connection.connection()
    row = await fetch_one(
        connection, _APPROVED_LEAVE_ON, {"tenant": tenant, "cadre_id": cadre_id, "day": day}
    )
    return bool(row and row["found"])
