"""Keeps attendance's replica of the directory, applied from directory.* events through the
idempotent consumer (each event once, in the same transaction as its dedup record)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from cadre.attendance.adapters.tables import fences, people, unit_paths, workday_overrides
from cadre.events.catalogue import (
    AnyEvent,
    CadreDeactivated,
    CadreRegistered,
    CadreTransferred,
    CadreUpdated,
    GeofenceSet,
    UnitCreated,
    WorkdayOverridden,
)
from cadre.events.consumer import InboundRecord


async def apply_directory_event(session: AsyncSession, event: AnyEvent, _: InboundRecord) -> None:
    tenant = event.tenant
    match event:
        case UnitCreated(data=data):
            await session.execute(
                insert(unit_paths)
                .values(tenant=tenant, unit_id=data.unit_id, path=data.path)
                .on_conflict_do_update(
                    index_elements=["tenant", "unit_id"], set_={"path": data.path}
                )
            )
        case CadreRegistered(data=data):
            values = {
                "unit_id": data.unit_id,
                "stationed": data.stationed,
                "leader_level": data.leader_level.value if data.leader_level else None,
                "active": True,
            }
            await session.execute(
                insert(people)
                .values(
                    tenant=tenant,
                    cadre_id=data.cadre_id,
                    registered_on=event.occurred_at.date(),
                    **values,
                )
                .on_conflict_do_update(index_elements=["tenant", "cadre_id"], set_=values)
            )
        case CadreUpdated(data=data):
            await session.execute(
                sa.update(people)
                .where(people.c.tenant == tenant, people.c.cadre_id == data.cadre_id)
                .values(
                    stationed=data.stationed,
                    leader_level=data.leader_level.value if data.leader_level else None,
                )
            )
        case CadreTransferred(data=data):
            await session.execute(
                sa.update(people)
                .where(people.c.tenant == tenant, people.c.cadre_id == data.cadre_id)
                .values(unit_id=data.to_unit_id)
            )
        case CadreDeactivated(data=data):
            await session.execute(
                sa.update(people)
                .where(people.c.tenant == tenant, people.c.cadre_id == data.cadre_id)
                .values(active=False)
            )
        case GeofenceSet(data=data):
            values = {"lat": data.lat, "lon": data.lon, "radius_m": data.radius_m}
            await session.execute(
                insert(fences)
                .values(tenant=tenant, unit_id=data.unit_id, fence_id=data.fence_id, **values)
                .on_conflict_do_update(
                    index_elements=["tenant", "unit_id", "fence_id"], set_=values
                )
            )
        case WorkdayOverridden(data=data):
            where = (workday_overrides.c.tenant == tenant, workday_overrides.c.day == data.day)
            if data.workday is None:
                await session.execute(sa.delete(workday_overrides).where(*where))
            else:
                await session.execute(
                    insert(workday_overrides)
                    .values(tenant=tenant, day=data.day, workday=data.workday)
                    .on_conflict_do_update(
                        index_elements=["tenant", "day"], set_={"workday": data.workday}
                    )
                )
        case _:
            pass  # roles come with the token; other directory events do not concern attendance
