"""Study: items assigned to a unit reach every member of its subtree; a completion records
the minutes spent. Each cadre must complete a number of items a month (2 by default, per
tenant); the shortfall is queryable for a cadre and for a unit."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from cadre.events.catalogue import (
    StudyAssigned,
    StudyAssignedData,
    StudyCompleted,
    StudyCompletedData,
)
from cadre.events.context import ChangeContext
from cadre.events.envelope import new_event_id
from cadre.events.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page, keyset_page, paginate
from cadre.events.problems import Problem
from cadre.events.store import append
from cadre.events.units import covers
from cadre.events.vocabulary import Role
from cadre.journal.adapters.tables import REPLICA, studies, study_assignments
from cadre.journal.domain.rules import can_read_all, check_assigner, study_shortfall
from cadre.journal.entrypoints.common import (
    CurrentPrincipal,
    as_problems,
    sessions_of,
    settings_of,
    today,
)

router = APIRouter(tags=["study"])
Month = Annotated[str | None, Query(pattern=r"^[1-9]\d{3}-(0[1-9]|1[0-2])$")]


class StudyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=200)
    unit_id: str = Field(min_length=1, max_length=128)
    party_theory: bool = Field(default=False, description="party-theory study counts to politics")
    due_on: date | None = None


class StudyOut(BaseModel):
    study_id: str
    title: str
    unit_id: str
    party_theory: bool
    due_on: date | None
    assignees: int


class MyStudyOut(BaseModel):
    study_id: str
    title: str
    party_theory: bool
    due_on: date | None
    assigned_on: date
    completed_at: datetime | None
    minutes: int | None


class CompleteStudyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    minutes: int = Field(ge=1, le=24 * 60, description="time spent")


class ShortfallOut(BaseModel):
    cadre_id: str
    month: str
    required: int
    completed: int
    minutes: int
    shortfall: int


@router.post("/study", response_model=StudyOut, status_code=201)
async def assign_study(body: StudyIn, principal: CurrentPrincipal, request: Request) -> StudyOut:
    """Assign a study item to a unit: every active member of its subtree gets it now."""
    tenant = principal.tenant
    now = datetime.now(UTC)
    async with sessions_of(request)() as session, session.begin():
        path = await REPLICA.unit_path(session, tenant, body.unit_id)
        if path is None:
            raise Problem(404, "unit-not-found", f"No unit {body.unit_id!r}.")
        with as_problems():
            check_assigner(principal, path)
        members = [
            m
            for m in await session.execute(REPLICA.members_with_paths(tenant))
            if m.active and covers(path, m.path)
        ]
        if not members:
            raise Problem(422, "empty-unit", f"Unit {body.unit_id!r} has no active members.")
        study_id = str(new_event_id())
        await session.execute(
            sa.insert(studies).values(
                tenant=tenant,
                study_id=study_id,
                unit_id=body.unit_id,
                unit_path=path,
                title=body.title,
                party_theory=body.party_theory,
                due_on=body.due_on,
                assigner_id=principal.sub,
                assigned_at=now,
            )
        )
        context = ChangeContext.of(request, principal)
        data = StudyAssignedData(
            study_id=study_id,
            title=body.title,
            party_theory=body.party_theory,
            due_on=body.due_on,
            unit_id=body.unit_id,
        )
        for member in members:
            event = StudyAssigned(**context.envelope(member.cadre_id, member.path, now), data=data)
            await append(session, f"study:{tenant}:{study_id}:{member.cadre_id}", 0, [event])
        await session.execute(
            sa.insert(study_assignments),
            [
                {
                    "tenant": tenant,
                    "study_id": study_id,
                    "cadre_id": m.cadre_id,
                    "assigned_on": today(request),
                }
                for m in members
            ],
        )
    return StudyOut(
        study_id=study_id,
        title=body.title,
        unit_id=body.unit_id,
        party_theory=body.party_theory,
        due_on=body.due_on,
        assignees=len(members),
    )


def _assignments_of(tenant: str, cadre_id: str) -> sa.Select[Any]:
    """A cadre's study assignments with the items' titles and kinds."""
    return (
        sa.select(study_assignments, studies.c.title, studies.c.party_theory, studies.c.due_on)
        .join(
            studies,
            sa.and_(
                studies.c.tenant == study_assignments.c.tenant,
                studies.c.study_id == study_assignments.c.study_id,
            ),
        )
        .where(study_assignments.c.tenant == tenant, study_assignments.c.cadre_id == cadre_id)
    )


@router.get("/study", response_model=Page[MyStudyOut])
async def my_study(
    principal: CurrentPrincipal,
    request: Request,
    completed: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=128)] = None,
) -> Page[MyStudyOut]:
    """My study items, in the order they were assigned (the cursor is the last study id)."""
    query = _assignments_of(principal.tenant, principal.sub)
    if completed is not None:
        done = study_assignments.c.completed_at.is_not(None)
        query = query.where(done if completed else sa.not_(done))
    if cursor is not None:
        query = query.where(study_assignments.c.study_id > cursor)
    async with sessions_of(request)() as session:
        rows = (
            await session.execute(query.order_by(study_assignments.c.study_id).limit(limit + 1))
        ).all()
    page, next_cursor = keyset_page(rows, limit, lambda r: str(r.study_id))
    return Page[MyStudyOut](
        items=[
            MyStudyOut(
                study_id=r.study_id,
                title=r.title,
                party_theory=r.party_theory,
                due_on=r.due_on,
                assigned_on=r.assigned_on,
                completed_at=r.completed_at,
                minutes=r.minutes,
            )
            for r in page
        ],
        next_cursor=next_cursor,
    )


@router.post(
    "/study/{study_id}/complete",
    response_model=MyStudyOut,
    responses={404: {"description": "Not assigned to you"}, 409: {"description": "Done"}},
)
async def complete_study(
    study_id: str, body: CompleteStudyIn, principal: CurrentPrincipal, request: Request
) -> MyStudyOut:
    tenant = principal.tenant
    now = datetime.now(UTC)
    async with sessions_of(request)() as session, session.begin():
        row = (
            await session.execute(
                _assignments_of(tenant, principal.sub)
                .where(study_assignments.c.study_id == study_id)
                .with_for_update(of=study_assignments)
            )
        ).first()
        if row is None:
            raise Problem(404, "study-not-found", f"Study {study_id!r} is not assigned to you.")
        if row.completed_at is not None:
            raise Problem(409, "study-already-completed", "You completed this study already.")
        person = await REPLICA.person(session, tenant, principal.sub, principal.unit_path)
        unit_path = person.unit_path if person is not None else principal.unit_path
        event = StudyCompleted(
            **ChangeContext.of(request, principal).envelope(principal.sub, unit_path, now),
            data=StudyCompletedData(
                study_id=study_id, party_theory=row.party_theory, minutes=body.minutes
            ),
        )
        await append(session, f"study:{tenant}:{study_id}:{principal.sub}", 1, [event])
        await session.execute(
            sa.update(study_assignments)
            .where(
                study_assignments.c.tenant == tenant,
                study_assignments.c.study_id == study_id,
                study_assignments.c.cadre_id == principal.sub,
            )
            .values(completed_at=now, completed_on=today(request), minutes=body.minutes)
        )
    return MyStudyOut(
        study_id=study_id,
        title=row.title,
        party_theory=row.party_theory,
        due_on=row.due_on,
        assigned_on=row.assigned_on,
        completed_at=now,
        minutes=body.minutes,
    )


def _month_bounds(month: str) -> tuple[date, date]:
    year, number = (int(part) for part in month.split("-"))
    start = date(year, number, 1)
    end = date(year + (number == 12), number % 12 + 1, 1)
    return start, end


async def _completions(
    session: Any, tenant: str, cadre_ids: list[str], month: str
) -> dict[str, tuple[int, int]]:
    start, end = _month_bounds(month)
    rows = await session.execute(
        sa.select(
            study_assignments.c.cadre_id,
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(study_assignments.c.minutes), 0),
        )
        .where(
            study_assignments.c.tenant == tenant,
            study_assignments.c.cadre_id.in_(cadre_ids),
            study_assignments.c.completed_on >= start,
            study_assignments.c.completed_on < end,
        )
        .group_by(study_assignments.c.cadre_id)
    )
    return {r[0]: (int(r[1]), int(r[2])) for r in rows}


@router.get(
    "/cadres/{cadre_id}/study-shortfall",
    response_model=ShortfallOut,
    responses={404: {"description": "-"}},
)
async def cadre_shortfall(
    cadre_id: str, principal: CurrentPrincipal, request: Request, month: Month = None
) -> ShortfallOut:
    """How many study items the cadre still owes this month (or `month`)."""
    name = month or today(request).strftime("%Y-%m")
    required = settings_of(request).study_required(principal.tenant)
    async with sessions_of(request)() as session:
        person = await REPLICA.person(session, principal.tenant, cadre_id)
        visible = person is not None and (
            principal.sub == cadre_id
            or can_read_all(principal)
            or (principal.has_any(Role.LEADER) and covers(principal.unit_path, person.unit_path))
        )
        if not visible:
            raise Problem(404, "cadre-not-found", f"No cadre {cadre_id!r} that you can see.")
        done, minutes = (await _completions(session, principal.tenant, [cadre_id], name)).get(
            cadre_id, (0, 0)
        )
    return ShortfallOut(
        cadre_id=cadre_id,
        month=name,
        required=required,
        completed=done,
        minutes=minutes,
        shortfall=study_shortfall(required, done),
    )


@router.get(
    "/units/{unit_id}/study-shortfall",
    response_model=Page[ShortfallOut],
    responses={403: {"description": "-"}, 404: {"description": "-"}},
)
async def unit_shortfall(
    unit_id: str,
    principal: CurrentPrincipal,
    request: Request,
    month: Month = None,
    only_short: bool = True,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=128)] = None,
) -> Page[ShortfallOut]:
    """The active members of a unit's subtree and their study shortfall this month; by
    default only those still short."""
    name = month or today(request).strftime("%Y-%m")
    required = settings_of(request).study_required(principal.tenant)
    async with sessions_of(request)() as session:
        path = await REPLICA.unit_path(session, principal.tenant, unit_id)
        if path is None:
            raise Problem(404, "unit-not-found", f"No unit {unit_id!r}.")
        if not (
            can_read_all(principal)
            or (principal.has_any(Role.LEADER) and covers(principal.unit_path, path))
        ):
            raise Problem(403, "outside-scope", "That unit is outside the units you lead.")
        members = sorted(
            m.cadre_id
            for m in await session.execute(REPLICA.members_with_paths(principal.tenant))
            if m.active and covers(path, m.path)
        )
        counts = await _completions(session, principal.tenant, members, name)
    rows = []
    for cadre_id in members:
        done, minutes = counts.get(cadre_id, (0, 0))
        short = study_shortfall(required, done)
        if only_short and not short:
            continue
        rows.append(
            ShortfallOut(
                cadre_id=cadre_id,
                month=name,
                required=required,
                completed=done,
                minutes=minutes,
                shortfall=short,
            )
        )
    page, next_cursor = paginate(rows, lambda r: r.cadre_id, cursor, limit)
    return Page[ShortfallOut](items=page, next_cursor=next_cursor)
