"""Leave requests and their approval chain: request, approve step by step, reject with a
reason, cancel before the start; the whole chain is visible to the requester."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from cadre.attendance.adapters import queries
from cadre.attendance.adapters.tables import leaves
from cadre.attendance.domain.leave import (
    LeaveRuleError,
    check_approver,
    leave_workdays,
    overlaps,
    route_chain,
)
from cadre.attendance.entrypoints.common import (
    CurrentPrincipal,
    sessions_of,
    settings_of,
)
from cadre.events.auth import Principal
from cadre.events.catalogue import (
    ApprovalStep,
    LeaveApproved,
    LeaveApprovedData,
    LeaveCancelled,
    LeaveCancelledData,
    LeaveRejected,
    LeaveRejectedData,
    LeaveRequested,
    LeaveRequestedData,
    LeaveStepApproved,
    LeaveStepApprovedData,
)
from cadre.events.context import ChangeContext
from cadre.events.envelope import EventEnvelope, new_event_id
from cadre.events.pagination import MAX_LIMIT, Page, keyset_page
from cadre.events.problems import Problem
from cadre.events.store import append
from cadre.events.units import covers, in_subtree
from cadre.events.vocabulary import READ_ALL_ROLES, HalfDay, LeaderLevel, LeaveKind, Role

router = APIRouter(tags=["leave"])
RULE_STATUS = {"own-leave": 403, "wrong-level": 403, "outside-unit": 403, "already-decided": 409}


class LeaveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: LeaveKind
    starts_on: date
    ends_on: date
    start_half: HalfDay | None = Field(default=None, description="pm: the first day starts at noon")
    end_half: HalfDay | None = Field(default=None, description="am: the last day ends at noon")
    reason: str = Field(default="", max_length=1000)


class Decision(BaseModel):
    step: int
    level: LeaderLevel
    approver_id: str
    outcome: str
    comment: str
    decided_at: datetime


class LeaveOut(BaseModel):
    leave_id: str
    cadre_id: str
    kind: LeaveKind
    starts_on: date
    ends_on: date
    start_half: HalfDay | None
    end_half: HalfDay | None
    workdays: float
    reason: str
    chain: list[LeaderLevel]
    step: int = Field(description="the index in `chain` waiting for a decision")
    status: str = Field(description="pending, approved, rejected or cancelled")
    decisions: list[Decision]


class ApproveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    comment: str = Field(default="", max_length=1000)


class RejectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=1000, description="required")


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(default="", max_length=1000)


def _out(row: Any) -> LeaveOut:
    return LeaveOut(
        leave_id=row.leave_id,
        cadre_id=row.cadre_id,
        kind=LeaveKind(row.kind),
        starts_on=row.starts_on,
        ends_on=row.ends_on,
        start_half=HalfDay(row.start_half) if row.start_half else None,
        end_half=HalfDay(row.end_half) if row.end_half else None,
        workdays=row.workdays,
        reason=row.reason,
        chain=[LeaderLevel(level) for level in row.chain],
        step=row.step,
        status=row.status,
        decisions=[Decision(**d) for d in row.decisions],
    )


def leave_stream(tenant: str, leave_id: str) -> str:
    return f"leave:{tenant}:{leave_id}"


@router.post(
    "/leaves",
    response_model=LeaveOut,
    status_code=201,
    responses={409: {"description": "Overlaps another pending or approved leave"}},
)
async def request_leave(body: LeaveIn, principal: CurrentPrincipal, request: Request) -> LeaveOut:
    tenant, cadre_id = principal.tenant, principal.sub
    async with sessions_of(request)() as session, session.begin():
        person = await queries.person(session, tenant, cadre_id, principal.unit_path)
        if person is None or not person.active:
            raise Problem(
                422, "unknown-cadre", "You are not (or no longer) registered for attendance."
            )
        try:
            workdays = leave_workdays(
                await queries.calendar(session, tenant),
                body.starts_on,
                body.ends_on,
                body.start_half,
                body.end_half,
            )
        except LeaveRuleError as exc:
            raise Problem(422, exc.code, str(exc)) from exc
        if workdays <= 0:
            raise Problem(422, "no-workdays", "The leave covers no workday.")
        mine = await session.execute(
            sa.select(leaves.c.leave_id, leaves.c.starts_on, leaves.c.ends_on).where(
                leaves.c.tenant == tenant,
                leaves.c.cadre_id == cadre_id,
                leaves.c.status.in_(["pending", "approved"]),
            )
        )
        clash = next(
            (
                r.leave_id
                for r in mine
                if overlaps((r.starts_on, r.ends_on), (body.starts_on, body.ends_on))
            ),
            None,
        )
        if clash is not None:
            raise Problem(
                409, "overlapping-leave", f"This overlaps your leave {clash}.", leave_id=clash
            )
        leader_level = principal.level if principal.has_any(Role.LEADER) else None
        try:
            chain = route_chain(workdays, leader_level, settings_of(request).chain_rules(tenant))
        except LeaveRuleError as exc:
            raise Problem(422, exc.code, str(exc)) from exc
        leave_id = str(new_event_id())
        event = LeaveRequested(
            **ChangeContext.of(request, principal).envelope(cadre_id, person.unit_path),
            data=LeaveRequestedData(
                leave_id=leave_id,
                kind=body.kind,
                starts_on=body.starts_on,
                ends_on=body.ends_on,
                start_half=body.start_half,
                end_half=body.end_half,
                workdays=workdays,
                reason=body.reason,
                chain=tuple(ApprovalStep(level=lv) for lv in chain),
            ),
        )
        await append(session, leave_stream(tenant, leave_id), 0, [event])
        await session.execute(
            sa.insert(leaves).values(
                tenant=tenant,
                leave_id=leave_id,
                cadre_id=cadre_id,
                unit_path=person.unit_path,
                kind=body.kind.value,
                starts_on=body.starts_on,
                ends_on=body.ends_on,
                start_half=body.start_half.value if body.start_half else None,
                end_half=body.end_half.value if body.end_half else None,
                workdays=workdays,
                reason=body.reason,
                chain=[lv.value for lv in chain],
                step=0,
                status="pending",
                decisions=[],
                version=1,
            )
        )
        row = await _load(session, tenant, leave_id)
    return _out(row)


async def _load(session: AsyncSession, tenant: str, leave_id: str, lock: bool = False) -> Any:
    query = sa.select(leaves).where(leaves.c.tenant == tenant, leaves.c.leave_id == leave_id)
    row = (await session.execute(query.with_for_update() if lock else query)).first()
    if row is None:
        raise Problem(404, "leave-not-found", f"No leave {leave_id!r}.")
    return row


def _may_see(principal: Principal, row: Any) -> bool:
    return (
        row.cadre_id == principal.sub
        or principal.has_any(*READ_ALL_ROLES)
        or (principal.has_any(Role.LEADER) and covers(principal.unit_path, row.unit_path))
    )


@router.get("/leaves/{leave_id}", response_model=LeaveOut, summary="A leave with its whole chain")
async def get_leave(leave_id: str, principal: CurrentPrincipal, request: Request) -> LeaveOut:
    async with sessions_of(request)() as session:
        row = await _load(session, principal.tenant, leave_id)
    if not _may_see(principal, row):
        raise Problem(404, "leave-not-found", f"No leave {leave_id!r}.")
    return _out(row)


async def _decide(
    request: Request, principal: Principal, leave_id: str, approve: bool, text: str
) -> LeaveOut:
    tenant = principal.tenant
    async with sessions_of(request)() as session, session.begin():
        row = await _load(session, tenant, leave_id, lock=True)
        if row.status != "pending":
            raise Problem(409, "already-decided", f"This leave is {row.status}.")
        chain = [LeaderLevel(level) for level in row.chain]
        level = principal.level if principal.has_any(Role.LEADER) else None
        try:
            check_approver(
                chain,
                row.step,
                level,
                principal.unit_path,
                row.unit_path,
                principal.sub,
                row.cadre_id,
            )
        except LeaveRuleError as exc:
            raise Problem(RULE_STATUS.get(exc.code, 403), exc.code, str(exc)) from exc
        envelope = ChangeContext.of(request, principal).envelope(row.cadre_id, row.unit_path)
        step_level = chain[row.step]
        events: list[EventEnvelope]
        if approve:
            events = [
                LeaveStepApproved(
                    **envelope,
                    data=LeaveStepApprovedData(
                        leave_id=leave_id,
                        step=row.step,
                        level=step_level,
                        approver_id=principal.sub,
                        comment=text,
                    ),
                )
            ]
            last = row.step + 1 == len(chain)
            if last:
                events.append(
                    LeaveApproved(
                        **envelope,
                        data=LeaveApprovedData(
                            leave_id=leave_id,
                            kind=LeaveKind(row.kind),
                            starts_on=row.starts_on,
                            ends_on=row.ends_on,
                            workdays=row.workdays,
                        ),
                    )
                )
            status, step = ("approved" if last else "pending"), row.step + 1
        else:
            events = [
                LeaveRejected(
                    **envelope,
                    data=LeaveRejectedData(
                        leave_id=leave_id,
                        step=row.step,
                        level=step_level,
                        approver_id=principal.sub,
                        reason=text,
                    ),
                )
            ]
            status, step = "rejected", row.step
        await append(session, leave_stream(tenant, leave_id), row.version, events)
        decision = {
            "step": row.step,
            "level": step_level.value,
            "approver_id": principal.sub,
            "outcome": "approved" if approve else "rejected",
            "comment": text,
            "decided_at": datetime.now(UTC).isoformat(),
        }
        await session.execute(
            sa.update(leaves)
            .where(leaves.c.tenant == tenant, leaves.c.leave_id == leave_id)
            .values(
                status=status,
                step=step,
                decisions=[*row.decisions, decision],
                version=row.version + len(events),
            )
        )
        saved = await _load(session, tenant, leave_id)
    return _out(saved)


@router.post(
    "/leaves/{leave_id}/approve",
    response_model=LeaveOut,
    responses={
        403: {"description": "Not a leader of this step's level over the requester"},
        409: {"description": "Already decided"},
    },
)
async def approve_leave(
    leave_id: str, body: ApproveIn, principal: CurrentPrincipal, request: Request
) -> LeaveOut:
    return await _decide(request, principal, leave_id, approve=True, text=body.comment)


@router.post(
    "/leaves/{leave_id}/reject",
    response_model=LeaveOut,
    responses={403: {"description": "Not a leader of this step's level over the requester"}},
)
async def reject_leave(
    leave_id: str, body: RejectIn, principal: CurrentPrincipal, request: Request
) -> LeaveOut:
    return await _decide(request, principal, leave_id, approve=False, text=body.reason)


@router.post(
    "/leaves/{leave_id}/cancel",
    response_model=LeaveOut,
    summary="Cancel your own leave before it starts",
)
async def cancel_leave(
    leave_id: str, body: CancelIn, principal: CurrentPrincipal, request: Request
) -> LeaveOut:
    tenant = principal.tenant
    today = datetime.now(ZoneInfo(settings_of(request).default_timezone)).date()
    async with sessions_of(request)() as session, session.begin():
        row = await _load(session, tenant, leave_id, lock=True)
        if row.cadre_id != principal.sub:
            raise Problem(403, "not-your-leave", "Only the requester cancels a leave.")
        if row.status not in ("pending", "approved"):
            raise Problem(409, "already-decided", f"This leave is {row.status}.")
        if row.starts_on <= today:
            raise Problem(409, "leave-started", "A leave can be cancelled only before it starts.")
        event = LeaveCancelled(
            **ChangeContext.of(request, principal).envelope(row.cadre_id, row.unit_path),
            data=LeaveCancelledData(leave_id=leave_id, reason=body.reason),
        )
        await append(session, leave_stream(tenant, leave_id), row.version, [event])
        await session.execute(
            sa.update(leaves)
            .where(leaves.c.tenant == tenant, leaves.c.leave_id == leave_id)
            .values(status="cancelled", version=row.version + 1)
        )
        saved = await _load(session, tenant, leave_id)
    return _out(saved)


Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


@router.get("/leaves", response_model=Page[LeaveOut], summary="My leaves")
async def my_leaves(
    principal: CurrentPrincipal, request: Request, limit: Limit = 50, cursor: str | None = None
) -> Page[LeaveOut]:
    query = sa.select(leaves).where(
        leaves.c.tenant == principal.tenant, leaves.c.cadre_id == principal.sub
    )
    return await _leave_page(request, query, cursor, limit)


@router.get(
    "/approvals/pending",
    response_model=Page[LeaveOut],
    summary="Leaves waiting for a decision at my level in units I lead",
)
async def pending_approvals(
    principal: CurrentPrincipal, request: Request, limit: Limit = 50, cursor: str | None = None
) -> Page[LeaveOut]:
    if not principal.has_any(Role.LEADER) or principal.level is None:
        return Page[LeaveOut](items=[], next_cursor=None)
    query = sa.select(leaves).where(
        leaves.c.tenant == principal.tenant,
        leaves.c.status == "pending",
        # `step` counts from 0 and PostgreSQL arrays from 1.
        leaves.c.chain[leaves.c.step + 1] == principal.level.value,
        leaves.c.cadre_id != principal.sub,
        in_subtree(leaves.c.unit_path, principal.unit_path),
    )
    return await _leave_page(request, query, cursor, limit)


async def _leave_page(
    request: Request, query: sa.Select[Any], cursor: str | None, limit: int
) -> Page[LeaveOut]:
    """One page of `query`'s leaves in leave-id order, after the id `cursor`, read in SQL."""
    if cursor is not None:
        query = query.where(leaves.c.leave_id > cursor)
    async with sessions_of(request)() as session:
        rows = (await session.execute(query.order_by(leaves.c.leave_id).limit(limit + 1))).all()
    page, next_cursor = keyset_page(rows, limit, lambda r: r.leave_id)
    return Page[LeaveOut](items=[_out(r) for r in page], next_cursor=next_cursor)
