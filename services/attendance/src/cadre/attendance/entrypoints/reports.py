"""Admin and leader views: rebinding a device, a unit's day, the stationing-days report."""

from __future__ import annotations

import calendar as month_calendar
import io
from datetime import date
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from openpyxl import Workbook
from pydantic import BaseModel, ConfigDict, Field

from cadre.attendance.adapters.tables import (
    REPLICA,
    check_ins,
    day_closes,
    devices,
    leaves,
    people,
    unit_paths,
)
from cadre.attendance.entrypoints.checkins import device_stream
from cadre.attendance.entrypoints.common import CurrentPrincipal, sessions_of
from cadre.events.auth import Principal
from cadre.events.catalogue import DeviceUnbound, DeviceUnboundData
from cadre.events.context import ChangeContext
from cadre.events.problems import Problem
from cadre.events.store import append, stream_version
from cadre.events.units import covers
from cadre.events.vocabulary import ADMIN_ROLES, READ_ALL_ROLES, Role

router = APIRouter()
MIN_STATIONED_DAYS = 20
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class UnbindIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=1000)


@router.post(
    "/cadres/{cadre_id}/device/unbind",
    status_code=204,
    tags=["devices"],
    summary="Approve a rebind: the cadre's next check-in binds their new phone (admins)",
)
async def unbind_device(
    cadre_id: str, body: UnbindIn, principal: CurrentPrincipal, request: Request
) -> None:
    if not principal.has_any(*ADMIN_ROLES):
        raise Problem(403, "forbidden", "Only admins approve a device rebind.")
    tenant = principal.tenant
    async with sessions_of(request)() as session, session.begin():
        row = (
            await session.execute(
                sa.select(devices)
                .where(devices.c.tenant == tenant, devices.c.cadre_id == cadre_id)
                .with_for_update()
            )
        ).first()
        if row is None or row.device_id is None:
            raise Problem(409, "no-bound-device", f"{cadre_id} has no bound device.")
        path = await session.scalar(
            sa.select(unit_paths.c.path)
            .join(
                people,
                sa.and_(
                    people.c.tenant == unit_paths.c.tenant, people.c.unit_id == unit_paths.c.unit_id
                ),
            )
            .where(people.c.tenant == tenant, people.c.cadre_id == cadre_id)
        )
        stream = device_stream(tenant, cadre_id)
        version = await stream_version(session, stream)
        await append(
            session,
            stream,
            version,
            [
                DeviceUnbound(
                    **ChangeContext.of(request, principal).envelope(
                        cadre_id, path or principal.unit_path
                    ),
                    data=DeviceUnboundData(
                        device_id=row.device_id, reason=body.reason, approved_by=principal.sub
                    ),
                )
            ],
        )
        await session.execute(
            sa.update(devices)
            .where(devices.c.tenant == tenant, devices.c.cadre_id == cadre_id)
            .values(device_id=None)
        )


async def _unit_path(request: Request, principal: Principal, unit_id: str) -> str:
    async with sessions_of(request)() as session:
        path = await session.scalar(
            sa.select(unit_paths.c.path).where(
                unit_paths.c.tenant == principal.tenant, unit_paths.c.unit_id == unit_id
            )
        )
    allowed = principal.has_any(*READ_ALL_ROLES) or (
        principal.has_any(Role.LEADER) and path and covers(principal.unit_path, path)
    )
    if path is None or not allowed:
        raise Problem(404, "unit-not-found", f"No unit {unit_id!r} that you may see.")
    return str(path)


async def _members(request: Request, tenant: str, path: str) -> list[Any]:
    async with sessions_of(request)() as session:
        rows = (
            await session.execute(
                sa.select(people.c.cadre_id, people.c.stationed, unit_paths.c.path)
                .join(unit_paths, REPLICA.unit_of_person)
                .where(people.c.tenant == tenant, people.c.active)
            )
        ).all()
    return [r for r in rows if covers(path, r.path)]


class UnitDay(BaseModel):
    unit_id: str
    day: date
    present: list[str]
    on_leave: list[str]
    missing: list[str]


@router.get(
    "/units/{unit_id}/days/{day}",
    response_model=UnitDay,
    tags=["reports"],
    summary="Who is in, who is on leave and who is missing in a unit (and below) on a day",
)
async def unit_day(
    unit_id: str, day: date, principal: CurrentPrincipal, request: Request
) -> UnitDay:
    path = await _unit_path(request, principal, unit_id)
    members = {r.cadre_id for r in await _members(request, principal.tenant, path)}
    async with sessions_of(request)() as session:
        present = set(
            (
                await session.execute(
                    sa.select(check_ins.c.cadre_id).where(
                        check_ins.c.tenant == principal.tenant,
                        check_ins.c.day == day,
                        check_ins.c.mode != "leave",
                    )
                )
            ).scalars()
        )
        away = set(
            (
                await session.execute(
                    sa.select(leaves.c.cadre_id).where(
                        leaves.c.tenant == principal.tenant,
                        leaves.c.status == "approved",
                        leaves.c.starts_on <= day,
                        leaves.c.ends_on >= day,
                    )
                )
            ).scalars()
        )
    here = sorted(members & present)
    gone = sorted((members & away) - present)
    return UnitDay(
        unit_id=unit_id,
        day=day,
        present=here,
        on_leave=gone,
        missing=sorted(members - present - away),
    )


class StationingRow(BaseModel):
    cadre_id: str
    unit_path: str
    days_present: int
    below_minimum: bool = Field(description=f"fewer than {MIN_STATIONED_DAYS} days present")


class StationingReport(BaseModel):
    unit_id: str
    month: str
    minimum_days: int
    rows: list[StationingRow]


@router.get(
    "/reports/stationing",
    tags=["reports"],
    response_model=StationingReport,
    responses={200: {"content": {XLSX: {}}, "description": "JSON, or XLSX with format=xlsx"}},
    summary="Days present per stationed cadre in a month, flagging fewer than 20",
)
async def stationing_report(
    principal: CurrentPrincipal,
    request: Request,
    unit_id: str,
    month: Annotated[str, Query(pattern=r"^[1-9]\d{3}-(0[1-9]|1[0-2])$")],
    format: Annotated[str, Query(pattern="^(json|xlsx)$")] = "json",
) -> Any:
    path = await _unit_path(request, principal, unit_id)
    year, number = (int(part) for part in month.split("-"))
    first, last = (
        date(year, number, 1),
        date(year, number, month_calendar.monthrange(year, number)[1]),
    )
    stationed = [r for r in await _members(request, principal.tenant, path) if r.stationed]
    counts: dict[str, int] = {}
    async with sessions_of(request)() as session:
        result = await session.execute(
            sa.select(day_closes.c.cadre_id, sa.func.count())
            .where(
                day_closes.c.tenant == principal.tenant,
                day_closes.c.status == "present",
                day_closes.c.day.between(first, last),
            )
            .group_by(day_closes.c.cadre_id)
        )
        for cadre_id, days_present in result:
            counts[cadre_id] = int(days_present)
    rows = [
        StationingRow(
            cadre_id=r.cadre_id,
            unit_path=r.path,
            days_present=counts.get(r.cadre_id, 0),
            below_minimum=counts.get(r.cadre_id, 0) < MIN_STATIONED_DAYS,
        )
        for r in sorted(stationed, key=lambda r: r.cadre_id)
    ]
    report = StationingReport(
        unit_id=unit_id, month=month, minimum_days=MIN_STATIONED_DAYS, rows=rows
    )
    if format == "json":
        return report
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = f"驻村天数 {month}"
    sheet.append(["干部", "单位", "在岗天数", f"少于{MIN_STATIONED_DAYS}天"])
    for row in rows:
        sheet.append(
            [row.cadre_id, row.unit_path, row.days_present, "是" if row.below_minimum else "否"]
        )
    buffer = io.BytesIO()
    workbook.save(buffer)
    return Response(
        buffer.getvalue(),
        media_type=XLSX,
        headers={
            "Content-Disposition": f'attachment; filename="stationing-{unit_id}-{month}.xlsx"'
        },
    )
