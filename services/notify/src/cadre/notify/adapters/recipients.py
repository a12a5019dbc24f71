"""Resolving audiences to people, from notify's replica of the directory."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from cadre.events.units import ancestor_paths
from cadre.events.vocabulary import LeaderLevel, Role
from cadre.notify.adapters.tables import REPLICA, people, person_names, person_roles, unit_paths
from cadre.notify.domain.routing import (
    Approvers,
    Audience,
    Candidate,
    LeadersAbove,
    OrgDepartment,
    Person,
    UnitLeaders,
    approvers,
    nearest_leaders,
)


async def leaders_over(session: AsyncSession, tenant: str, path: str) -> list[Candidate]:
    """Active leaders of the unit at `path` and of every unit above it."""
    rows = await session.execute(
        sa.select(people.c.cadre_id, unit_paths.c.path, people.c.leader_level)
        .join(unit_paths, REPLICA.unit_of_person)
        .where(
            people.c.tenant == tenant,
            people.c.active,
            people.c.leader_level.is_not(None),
            unit_paths.c.path.in_(ancestor_paths(path)),
        )
    )
    return [Candidate(r.cadre_id, r.path, LeaderLevel(r.leader_level)) for r in rows]


async def path_of(session: AsyncSession, tenant: str, cadre_id: str, fallback: str) -> str:
    person = await REPLICA.person(session, tenant, cadre_id, fallback)
    return person.unit_path if person is not None and person.unit_path else fallback


async def resolve(
    session: AsyncSession, tenant: str, audience: Audience, event_unit_path: str
) -> list[str]:
    match audience:
        case Person(cadre_id=cadre_id):
            return [cadre_id]
        case LeadersAbove(cadre_id=cadre_id):
            path = await path_of(session, tenant, cadre_id, event_unit_path)
            return nearest_leaders(await leaders_over(session, tenant, path), path, cadre_id)
        case UnitLeaders(unit_id=unit_id):
            unit = await REPLICA.unit_path(session, tenant, unit_id)
            if unit is None:
                return []
            return nearest_leaders(await leaders_over(session, tenant, unit), unit, "")
        case Approvers(requester_id=requester, level=level):
            path = await path_of(session, tenant, requester, event_unit_path)
            return approvers(await leaders_over(session, tenant, path), level, path, requester)
        case OrgDepartment(exclude=exclude):
            rows = await session.scalars(
                sa.select(person_roles.c.cadre_id)
                .join(
                    people,
                    sa.and_(
                        people.c.tenant == person_roles.c.tenant,
                        people.c.cadre_id == person_roles.c.cadre_id,
                    ),
                )
                .where(
                    person_roles.c.tenant == tenant,
                    person_roles.c.role == Role.ORG_ADMIN.value,
                    people.c.active,
                )
            )
            return sorted(r for r in rows if r != exclude)
    return []


async def names(session: AsyncSession, tenant: str, ids: Iterable[str]) -> dict[str, str]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = await session.execute(
        sa.select(person_names.c.cadre_id, person_names.c.name).where(
            person_names.c.tenant == tenant, person_names.c.cadre_id.in_(wanted)
        )
    )
    return {r.cadre_id: r.name for r in rows}
