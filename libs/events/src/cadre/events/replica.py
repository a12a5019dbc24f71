"""A service's read-only replica of the directory: units with their paths, people with their
unit, leader level and status, and the tenant's workday overrides. Services that need the
org tree define these tables in their own metadata and feed them from directory.* events
through the idempotent consumer (each event once, with its dedup record)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from cadre.events.calendar import WorkdayCalendar
from cadre.events.catalogue import (
    AnyEvent,
    CadreDeactivated,
    CadreRegistered,
    CadreTransferred,
    CadreUpdated,
    UnitCreated,
    WorkdayOverridden,
)


@dataclass(frozen=True)
class Person:
    cadre_id: str
    unit_id: str
    unit_path: str
    stationed: bool
    active: bool
    registered_on: date
    leader_level: str | None = None


@dataclass(frozen=True)
class DirectoryReplica:
    people: sa.Table
    unit_paths: sa.Table
    workday_overrides: sa.Table

    @classmethod
    def define(cls, metadata: sa.MetaData) -> DirectoryReplica:
        return cls(
            people=sa.Table(
                "people",
                metadata,
                sa.Column("tenant", sa.Text, primary_key=True),
                sa.Column("cadre_id", sa.Text, primary_key=True),
                sa.Column("unit_id", sa.Text, nullable=False),
                sa.Column("stationed", sa.Boolean, nullable=False),
                sa.Column("leader_level", sa.Text, nullable=True),
                sa.Column("active", sa.Boolean, nullable=False),
                sa.Column("registered_on", sa.Date, nullable=False),
            ),
            unit_paths=sa.Table(
                "unit_paths",
                metadata,
                sa.Column("tenant", sa.Text, primary_key=True),
                sa.Column("unit_id", sa.Text, primary_key=True),
                sa.Column("path", sa.Text, nullable=False),
            ),
            workday_overrides=sa.Table(
                "workday_overrides",
                metadata,
                sa.Column("tenant", sa.Text, primary_key=True),
                sa.Column("day", sa.Date, primary_key=True),
                sa.Column("workday", sa.Boolean, nullable=False),
            ),
        )

    async def apply(self, session: AsyncSession, event: AnyEvent) -> bool:
        """Apply a directory event; False when it is not one the replica keeps."""
        people, tenant = self.people, event.tenant
        match event:
            case UnitCreated(data=data):
                await session.execute(
                    insert(self.unit_paths)
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
            case WorkdayOverridden(data=data):
                overrides = self.workday_overrides
                where = (overrides.c.tenant == tenant, overrides.c.day == data.day)
                if data.workday is None:
                    await session.execute(sa.delete(overrides).where(*where))
                else:
                    await session.execute(
                        insert(overrides)
                        .values(tenant=tenant, day=data.day, workday=data.workday)
                        .on_conflict_do_update(
                            index_elements=["tenant", "day"], set_={"workday": data.workday}
                        )
                    )
            case _:
                return False
        return True

    @property
    def unit_of_person(self) -> sa.ColumnElement[bool]:
        """How `people` joins `unit_paths`: a person's row to their unit's path."""
        people, units = self.people, self.unit_paths
        return sa.and_(units.c.tenant == people.c.tenant, units.c.unit_id == people.c.unit_id)

    def members_with_paths(self, tenant: str) -> sa.Select[tuple[str, str, str, bool]]:
        """(cadre_id, unit_id, unit path, active) of the tenant's people."""
        people, units = self.people, self.unit_paths
        return (
            sa.select(people.c.cadre_id, people.c.unit_id, units.c.path, people.c.active)
            .join(units, self.unit_of_person)
            .where(people.c.tenant == tenant)
        )

    async def person(
        self, session: AsyncSession, tenant: str, cadre_id: str, token_unit_path: str = ""
    ) -> Person | None:
        """The replica's view of a cadre. Its unit path falls back to the token's, which the
        directory signed, while the replica has not yet seen the unit (events of different
        keys arrive in any order)."""
        people, units = self.people, self.unit_paths
        row = (
            await session.execute(
                sa.select(people, units.c.path)
                .join(units, self.unit_of_person, isouter=True)
                .where(people.c.tenant == tenant, people.c.cadre_id == cadre_id)
            )
        ).first()
        if row is None:
            return None
        return Person(
            row.cadre_id,
            row.unit_id,
            row.path or token_unit_path,
            row.stationed,
            row.active,
            row.registered_on,
            row.leader_level,
        )

    async def unit_path(self, session: AsyncSession, tenant: str, unit_id: str) -> str | None:
        units = self.unit_paths
        path: str | None = await session.scalar(
            sa.select(units.c.path).where(units.c.tenant == tenant, units.c.unit_id == unit_id)
        )
        return path

    async def calendar(self, session: AsyncSession, tenant: str) -> WorkdayCalendar:
        """The official calendar with the tenant's own overrides on top."""
        overrides = self.workday_overrides
        rows = await session.execute(
            sa.select(overrides.c.day, overrides.c.workday).where(overrides.c.tenant == tenant)
        )
        return WorkdayCalendar({r.day: r.workday for r in rows})
