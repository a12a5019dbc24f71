"""Keeps attendance's replica of the directory, applied from directory.* events through the
idempotent consumer (each event once, in the same transaction as its dedup record)."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from cadre.attendance.adapters.tables import REPLICA, fences
from cadre.events.catalogue import AnyEvent, GeofenceSet
from cadre.events.consumer import KafkaRecordLike


async def apply_directory_event(session: AsyncSession, event: AnyEvent, _: KafkaRecordLike) -> None:
    if await REPLICA.apply(session, event):
        return
    match event:
        case GeofenceSet(data=data):
            values = {"lat": data.lat, "lon": data.lon, "radius_m": data.radius_m}
            await session.execute(
                insert(fences)
                .values(tenant=event.tenant, unit_id=data.unit_id, fence_id=data.fence_id, **values)
                .on_conflict_do_update(
                    index_elements=["tenant", "unit_id", "fence_id"], set_=values
                )
            )
        case _:
            pass  # roles come with the token; other directory events do not concern attendance
