"""Reads and writes the directory's state. Every write also appends the matching events to
the event store (and so the outbox) in the caller's transaction."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from cadre.directory.adapters.tables import cadres, calendar_overrides, geofences, units
from cadre.directory.domain.imports import ImportPlan
from cadre.directory.domain.model import Cadre, Unit
from cadre.events.catalogue import (
    CadreRegistered,
    CadreRegisteredData,
    CadreTransferred,
    CadreTransferredData,
    CadreUpdated,
    CadreUpdatedData,
    GeofenceSet,
    GeofenceSetData,
    RoleData,
    RoleGranted,
    RoleRevoked,
    UnitCreated,
    UnitCreatedData,
    WorkdayOverridden,
    WorkdayOverriddenData,
)
from cadre.events.context import ChangeContext
from cadre.events.envelope import EventEnvelope
from cadre.events.store import append, stream_version
from cadre.events.units import in_subtree
from cadre.events.vocabulary import LeaderLevel, Role, UnitLevel


def unit_stream(tenant: str, unit_id: str) -> str:
    return f"unit:{tenant}:{unit_id}"


def cadre_stream(tenant: str, cadre_id: str) -> str:
    return f"cadre:{tenant}:{cadre_id}"


def _unit(row: sa.Row[tuple[object, ...]]) -> Unit:
    m = row._mapping
    return Unit(m["unit_id"], m["parent_id"], m["name"], UnitLevel(m["level"]), m["path"])


def _cadre(row: sa.Row[tuple[object, ...]]) -> Cadre:
    m = row._mapping
    return Cadre(
        cadre_id=m["cadre_id"],
        username=m["username"],
        name=m["name"],
        unit_id=m["unit_id"],
        rank=m["rank"],
        leader_level=LeaderLevel(m["leader_level"]) if m["leader_level"] else None,
        stationed=m["stationed"],
        roles=frozenset(Role(r) for r in m["roles"]),
        active=m["active"],
    )


async def load_units(session: AsyncSession, tenant: str) -> dict[str, Unit]:
    rows = await session.execute(sa.select(units).where(units.c.tenant == tenant))
    return {u.unit_id: u for u in map(_unit, rows)}


async def load_cadres(session: AsyncSession, tenant: str) -> dict[str, Cadre]:
    rows = await session.execute(sa.select(cadres).where(cadres.c.tenant == tenant))
    return {c.cadre_id: c for c in map(_cadre, rows)}


async def page_units(
    session: AsyncSession, tenant: str, *, within: str | None, after: str | None, limit: int
) -> list[Unit]:
    """Up to `limit` units in tree order (by path) after the path `after`, in the subtree
    `within` when given."""
    query = sa.select(units).where(units.c.tenant == tenant).order_by(units.c.path).limit(limit)
    if within is not None:
        query = query.where(in_subtree(units.c.path, within))
    if after is not None:
        query = query.where(units.c.path > after)
    return [_unit(row) for row in await session.execute(query)]


async def page_cadres(
    session: AsyncSession,
    tenant: str,
    *,
    within: Sequence[str],
    only: str | None,
    after: str | None,
    limit: int,
) -> list[Cadre]:
    """Up to `limit` cadres by id after `after`, in every one of the `within` subtrees (by
    unit path), and only `only` when given. One query on the primary key's order, so a
    page costs the same in a county of ten thousand as in a village."""
    query = (
        sa.select(cadres)
        .join(
            units, sa.and_(units.c.tenant == cadres.c.tenant, units.c.unit_id == cadres.c.unit_id)
        )
        .where(cadres.c.tenant == tenant, *(in_subtree(units.c.path, path) for path in within))
        .order_by(cadres.c.cadre_id)
        .limit(limit)
    )
    if only is not None:
        query = query.where(cadres.c.cadre_id == only)
    if after is not None:
        query = query.where(cadres.c.cadre_id > after)
    return [_cadre(row) for row in await session.execute(query)]


async def find_unit(session: AsyncSession, tenant: str, unit_id: str) -> Unit | None:
    row = (
        await session.execute(
            sa.select(units).where(units.c.tenant == tenant, units.c.unit_id == unit_id)
        )
    ).first()
    return _unit(row) if row is not None else None


async def find_cadre(session: AsyncSession, tenant: str, cadre_id: str) -> Cadre | None:
    row = (
        await session.execute(
            sa.select(cadres).where(cadres.c.tenant == tenant, cadres.c.cadre_id == cadre_id)
        )
    ).first()
    return _cadre(row) if row is not None else None


async def accounts_with_password(session: AsyncSession, tenant: str) -> set[str]:
    rows = await session.execute(
        sa.select(cadres.c.cadre_id).where(
            cadres.c.tenant == tenant, cadres.c.password_hash.is_not(None)
        )
    )
    return set(rows.scalars())


@dataclass(frozen=True)
class Login:
    tenant: str
    cadre: Cadre
    password_hash: str | None
    unit_path: str


async def find_logins(session: AsyncSession, username: str, tenant: str | None) -> list[Login]:
    query = (
        sa.select(cadres, units.c.path)
        .join(
            units, sa.and_(units.c.tenant == cadres.c.tenant, units.c.unit_id == cadres.c.unit_id)
        )
        .where(cadres.c.username == username)
    )
    if tenant is not None:
        query = query.where(cadres.c.tenant == tenant)
    rows = await session.execute(query)
    return [Login(r.tenant, _cadre(r), r.password_hash, r.path) for r in rows]


async def apply_plan(
    session: AsyncSession,
    context: ChangeContext,
    plan: ImportPlan,
    hash_password: Callable[[str], str],
) -> None:
    """Write a validated plan and its events; the caller's transaction makes it all or nothing."""
    tenant = context.tenant
    all_units = await load_units(session, tenant)
    for unit in plan.new_units:
        all_units[unit.unit_id] = unit
        event = UnitCreated(
            **context.envelope(unit.unit_id, unit.path),
            data=UnitCreatedData(
                unit_id=unit.unit_id,
                parent_id=unit.parent_id,
                name=unit.name,
                level=unit.level,
                path=unit.path,
            ),
        )
        await append(session, unit_stream(tenant, unit.unit_id), 0, [event])
        await session.execute(
            sa.insert(units).values(
                tenant=tenant,
                unit_id=unit.unit_id,
                parent_id=unit.parent_id,
                name=unit.name,
                level=unit.level.value,
                path=unit.path,
                version=1,
            )
        )
    for cadre in plan.new_cadres:
        path = all_units[cadre.unit_id].path
        events: list[EventEnvelope] = [
            CadreRegistered(
                **context.envelope(cadre.cadre_id, path),
                data=CadreRegisteredData(
                    cadre_id=cadre.cadre_id,
                    name=cadre.name,
                    unit_id=cadre.unit_id,
                    rank=cadre.rank,
                    leader_level=cadre.leader_level,
                    stationed=cadre.stationed,
                ),
            )
        ]
        events += _role_events(
            context, cadre, path, granted=cadre.roles - {Role.CADRE}, revoked=set()
        )
        await append(session, cadre_stream(tenant, cadre.cadre_id), 0, events)
        await session.execute(
            sa.insert(cadres).values(**_cadre_values(tenant, cadre), version=len(events))
        )
    for before, after in plan.updated_cadres:
        await _update_cadre(session, context, all_units, before, after)
    for cadre_id, password in plan.passwords.items():
        await session.execute(
            sa.update(cadres)
            .where(cadres.c.tenant == tenant, cadres.c.cadre_id == cadre_id)
            .values(password_hash=hash_password(password))
        )


async def _update_cadre(
    session: AsyncSession,
    context: ChangeContext,
    all_units: dict[str, Unit],
    before: Cadre,
    after: Cadre,
) -> None:
    tenant = context.tenant
    old_path, new_path = all_units[before.unit_id].path, all_units[after.unit_id].path
    events: list[EventEnvelope] = []
    if before.unit_id != after.unit_id:
        events.append(
            CadreTransferred(
                **context.envelope(after.cadre_id, new_path),
                data=CadreTransferredData(
                    cadre_id=after.cadre_id,
                    from_unit_id=before.unit_id,
                    to_unit_id=after.unit_id,
                    from_unit_path=old_path,
                    to_unit_path=new_path,
                ),
            )
        )
    details = ("name", "rank", "leader_level", "stationed")
    if any(getattr(before, f) != getattr(after, f) for f in details):
        events.append(
            CadreUpdated(
                **context.envelope(after.cadre_id, new_path),
                data=CadreUpdatedData(
                    cadre_id=after.cadre_id,
                    name=after.name,
                    rank=after.rank,
                    leader_level=after.leader_level,
                    stationed=after.stationed,
                ),
            )
        )
    events += _role_events(
        context,
        after,
        new_path,
        granted=after.roles - before.roles,
        revoked=before.roles - after.roles,
    )
    version = await session.scalar(
        sa.select(cadres.c.version).where(
            cadres.c.tenant == tenant, cadres.c.cadre_id == after.cadre_id
        )
    )
    assert version is not None
    await append(session, cadre_stream(tenant, after.cadre_id), version, events)
    values = _cadre_values(tenant, after)
    del values["tenant"], values["cadre_id"]
    await session.execute(
        sa.update(cadres)
        .where(cadres.c.tenant == tenant, cadres.c.cadre_id == after.cadre_id)
        .values(**values, version=version + len(events))
    )


def _role_events(
    context: ChangeContext,
    cadre: Cadre,
    path: str,
    granted: set[Role] | frozenset[Role],
    revoked: set[Role] | frozenset[Role],
) -> list[EventEnvelope]:
    events: list[EventEnvelope] = []
    for cls, roles in ((RoleGranted, granted), (RoleRevoked, revoked)):
        for role in sorted(roles):
            level = cadre.leader_level if role is Role.LEADER else None
            events.append(
                cls(
                    **context.envelope(cadre.cadre_id, path),
                    data=RoleData(
                        cadre_id=cadre.cadre_id, role=role, unit_id=cadre.unit_id, level=level
                    ),
                )
            )
    return events


def _cadre_values(tenant: str, cadre: Cadre) -> dict[str, object]:
    return {
        "tenant": tenant,
        "cadre_id": cadre.cadre_id,
        "username": cadre.username,
        "name": cadre.name,
        "unit_id": cadre.unit_id,
        "rank": cadre.rank,
        "leader_level": cadre.leader_level.value if cadre.leader_level else None,
        "stationed": cadre.stationed,
        "roles": sorted(r.value for r in cadre.roles),
        "active": cadre.active,
    }


async def set_password(
    session: AsyncSession, tenant: str, cadre_id: str, password_hash: str
) -> bool:
    result = await session.execute(
        sa.update(cadres)
        .where(cadres.c.tenant == tenant, cadres.c.cadre_id == cadre_id)
        .values(password_hash=password_hash)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def set_geofence(
    session: AsyncSession, context: ChangeContext, unit: Unit, fence: GeofenceSetData
) -> None:
    version = await session.scalar(
        sa.select(units.c.version).where(
            units.c.tenant == context.tenant, units.c.unit_id == unit.unit_id
        )
    )
    assert version is not None
    event = GeofenceSet(**context.envelope(unit.unit_id, unit.path), data=fence)
    await append(session, unit_stream(context.tenant, unit.unit_id), version, [event])
    await session.execute(
        sa.update(units)
        .where(units.c.tenant == context.tenant, units.c.unit_id == unit.unit_id)
        .values(version=version + 1)
    )
    values = {"name": fence.name, "lat": fence.lat, "lon": fence.lon, "radius_m": fence.radius_m}
    await session.execute(
        insert(geofences)
        .values(tenant=context.tenant, unit_id=unit.unit_id, fence_id=fence.fence_id, **values)
        .on_conflict_do_update(index_elements=["tenant", "unit_id", "fence_id"], set_=values)
    )


async def list_geofences(
    session: AsyncSession, tenant: str, unit_id: str
) -> Sequence[GeofenceSetData]:
    rows = await session.execute(
        sa.select(geofences)
        .where(geofences.c.tenant == tenant, geofences.c.unit_id == unit_id)
        .order_by(geofences.c.fence_id)
    )
    return [
        GeofenceSetData(
            unit_id=r.unit_id,
            fence_id=r.fence_id,
            name=r.name,
            lat=r.lat,
            lon=r.lon,
            radius_m=r.radius_m,
        )
        for r in rows
    ]


async def set_workday_override(
    session: AsyncSession,
    context: ChangeContext,
    root_path: str,
    day: date,
    workday: bool | None,
    note: str,
) -> None:
    stream = f"calendar:{context.tenant}"
    version = await stream_version(session, stream)
    event = WorkdayOverridden(
        **context.envelope(context.tenant, root_path),
        data=WorkdayOverriddenData(day=day, workday=workday, note=note),
    )
    await append(session, stream, version, [event])
    where = (calendar_overrides.c.tenant == context.tenant, calendar_overrides.c.day == day)
    if workday is None:
        await session.execute(sa.delete(calendar_overrides).where(*where))
    else:
        await session.execute(
            insert(calendar_overrides)
            .values(tenant=context.tenant, day=day, workday=workday, note=note)
            .on_conflict_do_update(
                index_elements=["tenant", "day"], set_={"workday": workday, "note": note}
            )
        )


async def workday_overrides(
    session: AsyncSession, tenant: str, year: int
) -> dict[date, tuple[bool, str]]:
    rows = await session.execute(
        sa.select(calendar_overrides).where(
            calendar_overrides.c.tenant == tenant,
            calendar_overrides.c.day.between(date(year, 1, 1), date(year, 12, 31)),
        )
    )
    return {r.day: (r.workday, r.note) for r in rows}
