"""Tasks: assigned by a leader to a cadre, or to a unit (fanned out to every member of the
subtree at assignment time); completed with evidence, graded, reopened or cancelled. Each
task is its own event stream; the overdue sweep lives in `jobs`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Query, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.ext.asyncio import AsyncSession

from cadre.events.auth import Principal
from cadre.events.catalogue import (
    TaskAssigned,
    TaskAssignedData,
    TaskCancelled,
    TaskCancelledData,
    TaskCompleted,
    TaskCompletedData,
    TaskGraded,
    TaskGradedData,
    TaskReopened,
    TaskReopenedData,
)
from cadre.events.context import ChangeContext
from cadre.events.envelope import EventEnvelope, new_event_id
from cadre.events.pagination import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    Page,
    keyset_after,
    keyset_cursor,
    keyset_page,
)
from cadre.events.problems import Problem
from cadre.events.store import append
from cadre.events.units import covers, in_subtree
from cadre.events.vocabulary import Dimension, Role
from cadre.journal.adapters import uploads
from cadre.journal.adapters.tables import REPLICA, attachments, entries, tasks
from cadre.journal.domain.rules import (
    can_read_all,
    check_assigner,
    check_task_owner,
)
from cadre.journal.domain.tasks import (
    TaskStatus,
    check_cancel,
    check_complete,
    check_grade,
    check_reopen,
    reopened_due,
)
from cadre.journal.entrypoints.common import (
    CurrentPrincipal,
    as_problems,
    json_or_form,
    sessions_of,
    with_uploads,
)

router = APIRouter(tags=["tasks"])
MAX_FAN_OUT = 20_000


class TaskIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=200)
    body: str = Field(default="", max_length=10_000)
    due_at: AwareDatetime
    reward_points: float = Field(ge=0, le=1000)
    penalty_points: float = Field(ge=0, le=1000)
    dimension: Dimension
    cadre_id: str | None = Field(default=None, min_length=1, max_length=128)
    unit_id: str | None = Field(default=None, min_length=1, max_length=128)

    @model_validator(mode="after")
    def _one_target(self) -> TaskIn:
        if (self.cadre_id is None) == (self.unit_id is None):
            raise ValueError("name exactly one of cadre_id or unit_id")
        return self


class TaskOut(BaseModel):
    task_id: str
    group_id: str | None
    cadre_id: str
    unit_path: str
    assigner_id: str
    title: str
    body: str
    dimension: Dimension
    reward_points: float
    penalty_points: float
    due_at: datetime
    status: TaskStatus
    overdue: bool
    assigned_at: datetime
    completed_at: datetime | None
    evidence_entry_id: str | None
    evidence_sha256: str | None
    quality_pct: float | None


class AssignedOut(BaseModel):
    group_id: str | None
    assignees: int
    tasks: list[TaskOut]


class GradeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    quality_pct: float = Field(ge=0, le=100)


class ReopenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=1000)
    due_at: AwareDatetime | None = None


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=1000)


class CompleteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    entry_id: str | None = Field(default=None, min_length=1, max_length=128)


def task_stream(tenant: str, task_id: str) -> str:
    return f"task:{tenant}:{task_id}"


def task_out(row: Any) -> TaskOut:
    return TaskOut(
        task_id=row.task_id,
        group_id=row.group_id,
        cadre_id=row.cadre_id,
        unit_path=row.unit_path,
        assigner_id=row.assigner_id,
        title=row.title,
        body=row.body,
        dimension=Dimension(row.dimension),
        reward_points=row.reward_points,
        penalty_points=row.penalty_points,
        due_at=row.due_at,
        status=TaskStatus(row.status),
        overdue=row.overdue_noted,
        assigned_at=row.assigned_at,
        completed_at=row.completed_at,
        evidence_entry_id=row.evidence_entry_id,
        evidence_sha256=row.evidence_sha256,
        quality_pct=row.quality_pct,
    )


@router.post(
    "/tasks",
    response_model=AssignedOut,
    status_code=201,
    responses={403: {"description": "Outside the units you lead"}, 404: {"description": "-"}},
)
async def assign(body: TaskIn, principal: CurrentPrincipal, request: Request) -> AssignedOut:
    """Assign a task to one cadre, or to a unit: a unit task becomes one task per active
    member of the unit's subtree at this moment (people who join later do not get it)."""
    now = datetime.now(UTC)
    if body.due_at <= now:
        raise Problem(422, "due-in-past", "The due time must be in the future.")
    tenant = principal.tenant
    async with sessions_of(request)() as session, session.begin():
        if body.cadre_id is not None:
            person = await REPLICA.person(session, tenant, body.cadre_id)
            if person is None or not person.active:
                raise Problem(404, "cadre-not-found", f"No active cadre {body.cadre_id!r}.")
            with as_problems():
                check_assigner(principal, person.unit_path)
            assignees = [(person.cadre_id, person.unit_id, person.unit_path)]
            group_id = None
        else:
            assert body.unit_id is not None
            path = await REPLICA.unit_path(session, tenant, body.unit_id)
            if path is None:
                raise Problem(404, "unit-not-found", f"No unit {body.unit_id!r}.")
            with as_problems():
                check_assigner(principal, path)
            members = await session.execute(REPLICA.members_with_paths(tenant))
            assignees = sorted(
                (m.cadre_id, m.unit_id, m.path)
                for m in members
                if m.active and covers(path, m.path) and m.cadre_id != principal.sub
            )
            if not assignees:
                raise Problem(422, "empty-unit", f"Unit {body.unit_id!r} has no active members.")
            if len(assignees) > MAX_FAN_OUT:
                raise Problem(
                    422, "unit-too-large", f"A unit task reaches at most {MAX_FAN_OUT} people."
                )
            group_id = str(new_event_id())
        context = ChangeContext.of(request, principal)
        rows = []
        for cadre_id, _, unit_path in assignees:
            task_id = str(new_event_id())
            event = TaskAssigned(
                **context.envelope(cadre_id, unit_path, now),
                data=TaskAssignedData(
                    task_id=task_id,
                    title=body.title,
                    body=body.body,
                    due_at=body.due_at,
                    reward_points=body.reward_points,
                    penalty_points=body.penalty_points,
                    dimension=body.dimension,
                    assigner_id=principal.sub,
                    group_id=group_id,
                    unit_id=body.unit_id,
                ),
            )
            await append(session, task_stream(tenant, task_id), 0, [event])
            rows.append(
                {
                    "tenant": tenant,
                    "task_id": task_id,
                    "group_id": group_id,
                    "cadre_id": cadre_id,
                    "unit_path": unit_path,
                    "assigner_id": principal.sub,
                    "title": body.title,
                    "body": body.body,
                    "dimension": body.dimension.value,
                    "reward_points": body.reward_points,
                    "penalty_points": body.penalty_points,
                    "due_at": body.due_at,
                    "status": TaskStatus.OPEN.value,
                    "assigned_at": now,
                    "overdue_noted": False,
                    "version": 1,
                }
            )
        await session.execute(sa.insert(tasks), rows)
        shown = (
            await session.execute(
                sa.select(tasks)
                .where(tasks.c.tenant == tenant, tasks.c.task_id.in_([r["task_id"] for r in rows]))
                .order_by(tasks.c.cadre_id)
                .limit(100)
            )
        ).all()
    return AssignedOut(
        group_id=group_id, assignees=len(rows), tasks=[task_out(row) for row in shown]
    )


def _visible(principal: Principal, row: Any) -> bool:
    if principal.sub in (row.cadre_id, row.assigner_id) or can_read_all(principal):
        return True
    return principal.has_any(Role.LEADER) and covers(principal.unit_path, row.unit_path)


async def _locked_task(session: AsyncSession, principal: Principal, task_id: str) -> Any:
    row = (
        await session.execute(
            sa.select(tasks)
            .where(tasks.c.tenant == principal.tenant, tasks.c.task_id == task_id)
            .with_for_update()
        )
    ).first()
    if row is None or not _visible(principal, row):
        raise Problem(404, "task-not-found", f"No task {task_id!r} that you can see.")
    return row


async def _advance(session: AsyncSession, row: Any, event: EventEnvelope, **values: Any) -> TaskOut:
    await append(session, task_stream(row.tenant, row.task_id), row.version, [event])
    updated = await session.execute(
        sa.update(tasks)
        .where(tasks.c.tenant == row.tenant, tasks.c.task_id == row.task_id)
        .values(version=row.version + 1, **values)
        .returning(tasks)
    )
    return task_out(updated.one())


@router.get("/tasks", response_model=Page[TaskOut])
async def list_tasks(
    principal: CurrentPrincipal,
    request: Request,
    scope: Annotated[str, Query(pattern="^(mine|assigned|subtree)$")] = "mine",
    status: TaskStatus | None = None,
    group_id: Annotated[str | None, Query(max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Page[TaskOut]:
    """`mine`: tasks assigned to me; `assigned`: tasks I assigned; `subtree`: the tasks of
    the units I lead (everything, for the organisation department). Soonest due first."""
    query = sa.select(tasks).where(tasks.c.tenant == principal.tenant)
    if scope == "mine":
        query = query.where(tasks.c.cadre_id == principal.sub)
    elif scope == "assigned":
        query = query.where(tasks.c.assigner_id == principal.sub)
    elif not can_read_all(principal):
        if not principal.has_any(Role.LEADER):
            raise Problem(403, "not-a-leader", "Only leaders see the tasks of a subtree.")
        query = query.where(in_subtree(tasks.c.unit_path, principal.unit_path))
    if status is not None:
        query = query.where(tasks.c.status == status.value)
    if group_id is not None:
        query = query.where(tasks.c.group_id == group_id)
    if cursor is not None:
        due, task_id = keyset_after(cursor)
        query = query.where(
            sa.tuple_(tasks.c.due_at, tasks.c.task_id)
            > sa.tuple_(sa.literal(due), sa.literal(task_id))
        )
    async with sessions_of(request)() as session:
        rows = (
            await session.execute(query.order_by(tasks.c.due_at, tasks.c.task_id).limit(limit + 1))
        ).all()
    page, next_cursor = keyset_page(rows, limit, lambda r: keyset_cursor(r.due_at, r.task_id))
    return Page[TaskOut](items=[task_out(r) for r in page], next_cursor=next_cursor)


@router.get("/tasks/{task_id}", response_model=TaskOut, responses={404: {"description": "-"}})
async def get_task(task_id: str, principal: CurrentPrincipal, request: Request) -> TaskOut:
    async with sessions_of(request)() as session:
        row = (
            await session.execute(
                sa.select(tasks).where(
                    tasks.c.tenant == principal.tenant, tasks.c.task_id == task_id
                )
            )
        ).first()
    if row is None or not _visible(principal, row):
        raise Problem(404, "task-not-found", f"No task {task_id!r} that you can see.")
    return task_out(row)


COMPLETE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": CompleteIn.model_json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "entry_id": {"type": "string"},
                        "file": {"type": "string", "format": "binary"},
                    },
                }
            },
        },
    }
}


@router.post(
    "/tasks/{task_id}/complete",
    response_model=TaskOut,
    openapi_extra=COMPLETE_BODY,
    responses={404: {"description": "-"}, 409: {"description": "Not open"}},
)
async def complete(task_id: str, principal: CurrentPrincipal, request: Request) -> TaskOut:
    """Complete my task with evidence: `entry_id` of one of my entries (JSON or form), or a
    `file` (multipart), checked like any attachment."""
    body, files = await json_or_form(
        request,
        CompleteIn,
        "completion",
        from_form=lambda form: {"entry_id": form.get("entry_id") or None},
        file_field="file",
        max_files=2,
        max_fields=5,
    )
    if len(files) > 1:
        raise Problem(422, "one-file", "Send at most one evidence file.")
    return await with_uploads(
        request,
        files,
        lambda batch: _record_completion(request, principal, task_id, body, batch),
    )


async def _record_completion(
    request: Request,
    principal: Principal,
    task_id: str,
    body: CompleteIn,
    batch: uploads.PreparedBatch,
) -> TaskOut:
    file = batch.files[0] if batch.files else None
    async with sessions_of(request)() as session, session.begin():
        row = await _locked_task(session, principal, task_id)
        with as_problems():
            check_complete(
                TaskStatus(row.status),
                row.cadre_id,
                principal.sub,
                body.entry_id is not None or file is not None,
            )
        if body.entry_id is not None:
            author = await session.scalar(
                sa.select(entries.c.cadre_id).where(
                    entries.c.tenant == principal.tenant, entries.c.entry_id == body.entry_id
                )
            )
            if author != principal.sub:
                raise Problem(422, "bad-evidence", f"{body.entry_id!r} is not one of your entries.")
        ref = None
        if file is not None:
            ref = file.ref()
            await session.execute(
                sa.delete(attachments).where(
                    attachments.c.tenant == principal.tenant, attachments.c.owner_id == task_id
                )
            )  # a reopened task's earlier evidence is replaced
            await session.execute(
                sa.insert(attachments).values(file.row(principal.tenant, task_id, 0))
            )
        now = datetime.now(UTC)
        event = TaskCompleted(
            **ChangeContext.of(request, principal).envelope(row.cadre_id, row.unit_path, now),
            data=TaskCompletedData(
                task_id=task_id,
                dimension=Dimension(row.dimension),
                reward_points=row.reward_points,
                evidence_entry_id=body.entry_id,
                evidence_attachment=ref,
            ),
        )
        return await _advance(
            session,
            row,
            event,
            status=TaskStatus.COMPLETED.value,
            completed_at=now,
            evidence_entry_id=body.entry_id,
            evidence_sha256=ref.sha256 if ref else None,
            quality_pct=None,
        )


@router.post(
    "/tasks/{task_id}/grade",
    response_model=TaskOut,
    responses={403: {"description": "-"}, 404: {"description": "-"}, 409: {"description": "-"}},
)
async def grade(
    task_id: str, body: GradeIn, principal: CurrentPrincipal, request: Request
) -> TaskOut:
    """The assigner grades a completed task's quality, 0-100%; the reward scales with it."""
    async with sessions_of(request)() as session, session.begin():
        row = await _locked_task(session, principal, task_id)
        with as_problems():
            check_task_owner(principal, row.assigner_id, row.unit_path)
            check_grade(TaskStatus(row.status))
        event = TaskGraded(
            **ChangeContext.of(request, principal).envelope(row.cadre_id, row.unit_path),
            data=TaskGradedData(
                task_id=task_id, quality_pct=body.quality_pct, grader_id=principal.sub
            ),
        )
        return await _advance(session, row, event, quality_pct=body.quality_pct)


@router.post(
    "/tasks/{task_id}/reopen",
    response_model=TaskOut,
    responses={403: {"description": "-"}, 404: {"description": "-"}, 409: {"description": "-"}},
)
async def reopen(
    task_id: str, body: ReopenIn, principal: CurrentPrincipal, request: Request
) -> TaskOut:
    """Send a completed task back, with a reason: its completion stops counting."""
    now = datetime.now(UTC)
    async with sessions_of(request)() as session, session.begin():
        row = await _locked_task(session, principal, task_id)
        with as_problems():
            check_task_owner(principal, row.assigner_id, row.unit_path)
            check_reopen(TaskStatus(row.status))
            due = reopened_due(row.due_at, now, body.due_at)
        event = TaskReopened(
            **ChangeContext.of(request, principal).envelope(row.cadre_id, row.unit_path, now),
            data=TaskReopenedData(task_id=task_id, reason=body.reason, due_at=due),
        )
        return await _advance(
            session,
            row,
            event,
            status=TaskStatus.OPEN.value,
            due_at=due,
            completed_at=None,
            quality_pct=None,
        )


@router.post(
    "/tasks/{task_id}/cancel",
    response_model=TaskOut,
    responses={403: {"description": "-"}, 404: {"description": "-"}, 409: {"description": "-"}},
)
async def cancel(
    task_id: str, body: CancelIn, principal: CurrentPrincipal, request: Request
) -> TaskOut:
    """Withdraw an open task, with a reason: neither its reward nor its penalty counts."""
    async with sessions_of(request)() as session, session.begin():
        row = await _locked_task(session, principal, task_id)
        with as_problems():
            check_task_owner(principal, row.assigner_id, row.unit_path)
            check_cancel(TaskStatus(row.status))
        event = TaskCancelled(
            **ChangeContext.of(request, principal).envelope(row.cadre_id, row.unit_path),
            data=TaskCancelledData(task_id=task_id, reason=body.reason),
        )
        return await _advance(session, row, event, status=TaskStatus.CANCELLED.value)
