"""POST /v1/check-ins and the cadre's own check-in list."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from fastapi import APIRouter, Query, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from cadre.attendance.adapters import queries
from cadre.attendance.adapters.tables import check_ins, devices
from cadre.attendance.domain.geo import within_any
from cadre.attendance.domain.spoofing import Fix, SpoofPolicy, suspicions
from cadre.attendance.entrypoints.common import (
    CurrentPrincipal,
    appends_of,
    connection_of,
    read_sessions_of,
    sessions_of,
    settings_of,
)
from cadre.events.auth import Principal
from cadre.events.catalogue import (
    CheckedIn,
    CheckedInData,
    CheckInFlagged,
    CheckInFlaggedData,
    DeviceBound,
    DeviceBoundData,
)
from cadre.events.context import ChangeContext
from cadre.events.db import DirectConnection
from cadre.events.envelope import EventEnvelope, new_event_id
from cadre.events.pagination import MAX_LIMIT, Page, keyset_after, keyset_cursor, keyset_page
from cadre.events.problems import Problem
from cadre.events.store import ConcurrencyError, StateRow, append, stream_version
from cadre.events.vocabulary import CheckInMode, FlagReason

router = APIRouter(tags=["check-ins"])

FENCED_MODES = {CheckInMode.NORMAL, CheckInMode.MEETING, CheckInMode.STUDY, CheckInMode.TRAINING}
DESTINATION_MODES = {CheckInMode.BUSINESS_TRIP, CheckInMode.VILLAGE_VISIT, CheckInMode.GOING_OUT}
SPOOF_REASONS = {
    FlagReason.IMPOSSIBLE_SPEED,
    FlagReason.POOR_ACCURACY,
    FlagReason.REPEATED_COORDINATES,
    FlagReason.MISMATCH_HISTORY,
}


class CheckInIn(BaseModel):
    """The body from the phone; the cadre is the token's `sub`."""

    model_config = ConfigDict(extra="forbid")
    device_id: str = Field(min_length=1, max_length=128)
    mode: CheckInMode
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    accuracy_m: float = Field(ge=0, le=100_000)
    occurred_at: AwareDatetime = Field(description="the device's time of the check-in, with offset")
    note: str = Field(default="", max_length=500)
    branch_activity: bool = Field(
        default=False, description="a meeting that is a Party branch activity"
    )
    destination: str | None = Field(default=None, min_length=1, max_length=200)

    @model_validator(mode="after")
    def _mode_rules(self) -> CheckInIn:
        if self.mode in DESTINATION_MODES and not self.destination:
            raise ValueError(f"a {self.mode.value} check-in needs a destination")
        if self.branch_activity and self.mode is not CheckInMode.MEETING:
            raise ValueError("only a meeting can be a branch activity")
        return self


class CheckInOut(BaseModel):
    check_in_id: str
    cadre_id: str
    day: str
    occurred_at: datetime
    mode: CheckInMode
    lat: float
    lon: float
    accuracy_m: float
    within_geofence: bool | None
    late_sync: bool
    flags: list[FlagReason]
    note: str
    destination: str | None


def device_stream(tenant: str, cadre_id: str) -> str:
    return f"device:{tenant}:{cadre_id}"


@router.post(
    "/check-ins",
    response_model=CheckInOut,
    status_code=201,
    responses={
        403: {"description": "Checked in from a device other than the bound one"},
        422: {"description": "Bad input, too old, in the future, or leave not approved"},
    },
)
async def check_in(body: CheckInIn, principal: CurrentPrincipal, request: Request) -> CheckInOut:
    settings = settings_of(request)
    now = datetime.now(UTC)
    if body.occurred_at > now + timedelta(minutes=settings.max_future_minutes):
        raise Problem(
            422,
            "check-in-in-future",
            "The check-in time is more than 5 minutes in the future; check the phone's clock.",
        )
    if now - body.occurred_at > timedelta(hours=settings.late_sync_limit_hours):
        raise Problem(
            422,
            "check-in-too-old",
            f"Check-ins older than {settings.late_sync_limit_hours} hours are not accepted.",
        )
    tenant, cadre_id = principal.tenant, principal.sub
    day = body.occurred_at.astimezone(ZoneInfo(settings.default_timezone)).date()
    fix = Fix(body.occurred_at, body.lat, body.lon)
    # The common case, the bound phone checking in again, needs neither a lock nor a
    # transaction: one read, then one statement that writes the events, their outbox rows
    # and the check-in together (BEGIN and COMMIT were two of five round trips), sent with
    # those of other check-ins arriving meanwhile (`AppendBatcher`). Binding, a rebound
    # phone and a foreign phone go through the locked transaction below.
    async with connection_of(request) as connection:
        known = _registered(
            await queries.check_in_context(
                connection, tenant, cadre_id, principal.unit_path, fix, lock_device=False
            )
        )
        if known.device is None or known.device.device_id != body.device_id:
            record = None
        else:
            mismatches = _recent_mismatches(known.device, now, settings.mismatch_history_days)
            record = await _record(
                connection, request, principal, body, known, day, now, mismatches
            )
    if record is None:
        return await _check_in_locked(request, principal, body, fix, day, now)
    await appends_of(request).append_new_stream(
        record.stream_id, record.events, state_row=record.row
    )
    return record.answer


def _registered(known: queries.CheckInContext | None) -> queries.CheckInContext:
    if known is None or not known.person.active:
        raise Problem(422, "unknown-cadre", "You are not (or no longer) registered for attendance.")
    return known


def _recent_mismatches(device: queries.BoundDevice, now: datetime, history_days: int) -> int:
    recent = device.last_mismatch_at and now - device.last_mismatch_at < timedelta(
        days=history_days
    )
    return device.mismatches if recent else 0


async def _check_in_locked(
    request: Request,
    principal: Principal,
    body: CheckInIn,
    fix: Fix,
    day: date,
    now: datetime,
) -> CheckInOut:
    """A check-in that may bind the phone or count a foreign one, with the device row
    locked: the phone's first check-ins and a rebind take turns."""
    settings = settings_of(request)
    tenant, cadre_id = principal.tenant, principal.sub
    context = ChangeContext.of(request, principal)
    mismatch: Problem | None = None
    result: CheckInOut | None = None
    async with sessions_of(request)() as session, session.begin():
        connection = await session.connection()
        known = _registered(
            await queries.check_in_context(
                connection, tenant, cadre_id, principal.unit_path, fix, lock_device=True
            )
        )
        person, device = known.person, known.device
        stream = device_stream(tenant, cadre_id)
        if device is None or device.device_id is None:
            if device is None:
                # Two first check-ins of one cadre race here (FOR UPDATE locks no row yet):
                # the primary key decides, and the loser gets a 409 to retry, which then
                # finds the bound device.
                claimed = await connection.execute(
                    pg_insert(devices)
                    .values(
                        tenant=tenant, cadre_id=cadre_id, mismatches=0, device_id=body.device_id
                    )
                    .on_conflict_do_nothing()
                    .returning(devices.c.cadre_id)
                )
                if claimed.first() is None:
                    raise ConcurrencyError(stream, 0, None)
            else:  # unbound by an admin; the row lock serialises rebinding
                await connection.execute(
                    sa.update(devices)
                    .where(devices.c.tenant == tenant, devices.c.cadre_id == cadre_id)
                    .values(device_id=body.device_id)
                )
            await append(
                session,
                stream,
                await stream_version(session, stream),
                [
                    DeviceBound(
                        **context.envelope(cadre_id, person.unit_path),
                        data=DeviceBoundData(device_id=body.device_id),
                    )
                ],
            )
            device_mismatches = 0
        elif device.device_id != body.device_id:
            # Refused, but recorded: the flag is evidence and must not be lost with the 403.
            await append(
                session,
                stream,
                await stream_version(session, stream),
                [
                    CheckInFlagged(
                        **context.envelope(cadre_id, person.unit_path),
                        data=CheckInFlaggedData(
                            device_id=body.device_id,
                            reasons=(FlagReason.DEVICE_MISMATCH,),
                            detail="checked in from a device other than the bound one",
                        ),
                    )
                ],
            )
            await session.execute(
                sa.update(devices)
                .where(devices.c.tenant == tenant, devices.c.cadre_id == cadre_id)
                .values(mismatches=devices.c.mismatches + 1, last_mismatch_at=now)
            )
            mismatch = Problem(
                403,
                "device-mismatch",
                "This phone is not the one bound to your account;"
                " ask an admin to approve a rebind.",
            )
        else:
            device_mismatches = _recent_mismatches(device, now, settings.mismatch_history_days)
        if mismatch is None:
            record = await _record(
                session, request, principal, body, known, day, now, device_mismatches
            )
            await append(session, record.stream_id, 0, record.events, state_row=record.row)
            result = record.answer
    if mismatch is not None:
        raise mismatch
    assert result is not None
    return result


@dataclass(frozen=True)
class _CheckInRecord:
    """A check-in decided and ready to append: its events, its row and the answer."""

    stream_id: str
    events: list[EventEnvelope]
    row: StateRow
    answer: CheckInOut


async def _record(
    session: AsyncSession | AsyncConnection | DirectConnection,
    request: Request,
    principal: Principal,
    body: CheckInIn,
    known: queries.CheckInContext,
    day: date,
    now: datetime,
    device_mismatches: int,
) -> _CheckInRecord:
    """Applies the rules (a leave check-in reads its approval through `session`) and
    builds what to write; the caller appends it."""
    settings = settings_of(request)
    tenant, cadre_id, person = principal.tenant, principal.sub, known.person
    if body.mode is CheckInMode.LEAVE and not await queries.approved_leave_on(
        session, tenant, cadre_id, day
    ):
        raise Problem(
            422, "no-approved-leave", f"A leave check-in needs an approved leave covering {day}."
        )
    within = None
    flags: list[FlagReason] = []
    if body.mode in FENCED_MODES and known.fences:
        within = within_any(known.fences, body.lat, body.lon)
        if not within:
            flags.append(FlagReason.OUTSIDE_GEOFENCE)
    flags += suspicions(
        Fix(body.occurred_at, body.lat, body.lon),
        body.accuracy_m,
        day=day,
        neighbours=known.neighbours,
        coordinates_on_other_days=known.same_coordinates,
        recent_device_mismatches=device_mismatches,
        policy=SpoofPolicy(
            max_speed_kmh=settings.max_speed_kmh, max_accuracy_m=settings.max_accuracy_m
        ),
    )
    late = now - body.occurred_at > timedelta(minutes=settings.late_sync_after_minutes)
    check_in_id = str(new_event_id())
    context = ChangeContext.of(request, principal)
    envelope = {**context.envelope(cadre_id, person.unit_path), "occurred_at": body.occurred_at}
    events: list[EventEnvelope] = [
        CheckedIn(
            **envelope,
            data=CheckedInData(
                check_in_id=check_in_id,
                device_id=body.device_id,
                mode=body.mode,
                lat=body.lat,
                lon=body.lon,
                accuracy_m=body.accuracy_m,
                note=body.note,
                branch_activity=body.branch_activity,
                destination=body.destination,
                within_geofence=within,
                late_sync=late,
                flags=tuple(flags),
            ),
        )
    ]
    spoofed = tuple(f for f in flags if f in SPOOF_REASONS)
    if spoofed:
        events.append(
            CheckInFlagged(
                **envelope,
                data=CheckInFlaggedData(
                    check_in_id=check_in_id,
                    device_id=body.device_id,
                    reasons=spoofed,
                    detail="recorded and flagged by the spoofing heuristics",
                ),
            )
        )
    row = StateRow(
        check_ins,
        dict(
            tenant=tenant,
            check_in_id=check_in_id,
            cadre_id=cadre_id,
            day=day,
            occurred_at=body.occurred_at,
            device_id=body.device_id,
            mode=body.mode.value,
            lat=body.lat,
            lon=body.lon,
            accuracy_m=body.accuracy_m,
            note=body.note,
            destination=body.destination,
            within_geofence=within,
            late_sync=late,
            flags=[f.value for f in flags],
        ),
    )
    # The row goes in one statement with the events: atomic with or without a transaction.
    answer = CheckInOut(
        check_in_id=check_in_id,
        cadre_id=cadre_id,
        day=day.isoformat(),
        occurred_at=body.occurred_at,
        mode=body.mode,
        lat=body.lat,
        lon=body.lon,
        accuracy_m=body.accuracy_m,
        within_geofence=within,
        late_sync=late,
        flags=flags,
        note=body.note,
        destination=body.destination,
    )
    return _CheckInRecord(f"checkin:{tenant}:{check_in_id}", events, row, answer)


@router.get("/check-ins", response_model=Page[CheckInOut], summary="My check-ins, newest first")
async def my_check_ins(
    principal: CurrentPrincipal,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: str | None = None,
) -> Page[CheckInOut]:
    # Keyset pagination in SQL, on the (tenant, cadre, time) index: a cadre checks in about
    # 500 times a year, and every page used to load and sort all of them.
    query = (
        sa.select(check_ins)
        .where(check_ins.c.tenant == principal.tenant, check_ins.c.cadre_id == principal.sub)
        .order_by(check_ins.c.occurred_at.desc(), check_ins.c.check_in_id.desc())
        .limit(limit + 1)
    )
    if cursor is not None:
        after_at, after_id = keyset_after(cursor)
        query = query.where(
            sa.tuple_(check_ins.c.occurred_at, check_ins.c.check_in_id)
            < sa.tuple_(sa.literal(after_at, sa.DateTime(timezone=True)), sa.literal(after_id))
        )
    async with read_sessions_of(request)() as session:
        rows = (await session.execute(query)).all()
    chosen, next_cursor = keyset_page(
        rows, limit, lambda r: keyset_cursor(r.occurred_at, r.check_in_id)
    )
    page = [
        CheckInOut(
            check_in_id=r.check_in_id,
            cadre_id=r.cadre_id,
            day=r.day.isoformat(),
            occurred_at=r.occurred_at,
            mode=CheckInMode(r.mode),
            lat=r.lat,
            lon=r.lon,
            accuracy_m=r.accuracy_m,
            within_geofence=r.within_geofence,
            late_sync=r.late_sync,
            flags=[FlagReason(f) for f in r.flags],
            note=r.note,
            destination=r.destination,
        )
        for r in chosen
    ]
    return Page[CheckInOut](items=page, next_cursor=next_cursor)
