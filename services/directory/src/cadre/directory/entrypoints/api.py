"""Directory HTTP API: tokens, the org tree, people, geofences, calendar, bulk import."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from cadre.directory.adapters import repository as repo
from cadre.directory.adapters.keys import jwks, signing_key
from cadre.directory.domain.imports import (
    OPTIONAL_PEOPLE_COLUMNS,
    PEOPLE_COLUMNS,
    UNIT_COLUMNS,
    ImportPlan,
    RowError,
    check_header,
    plan_people,
    plan_units,
)
from cadre.directory.domain.model import SLUG, Cadre, Unit
from cadre.directory.entrypoints.files import UnreadableFile, read_table
from cadre.directory.entrypoints.security import current_principal, hash_password, password_ok
from cadre.events.auth import Principal, sign_token
from cadre.events.calendar import WorkdayCalendar
from cadre.events.catalogue import GeofenceSetData
from cadre.events.context import ChangeContext
from cadre.events.pagination import MAX_LIMIT, Page, keyset_page
from cadre.events.problems import Problem
from cadre.events.service import request_sessions
from cadre.events.text import MAX_NAME_LENGTH, NAME_PATTERN
from cadre.events.vocabulary import ADMIN_ROLES, READ_ALL_ROLES, LeaderLevel, Role, UnitLevel

router = APIRouter()
SLUG_PATTERN = SLUG.pattern
public = APIRouter()
TOKEN_TTL_S = 8 * 3600
CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="page size")]


sessions_of = request_sessions


def require_admin(principal: Principal) -> None:
    if not principal.has_any(*ADMIN_ROLES):
        raise Problem(
            403,
            "forbidden",
            "Only organisation-department or platform admins change the directory.",
        )


def sees_all(principal: Principal) -> bool:
    return principal.has_any(*READ_ALL_ROLES)


# ------------------------------------------------------------------ tokens


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)
    tenant: str | None = Field(
        default=None,
        max_length=63,
        description="needed only when the username exists in several tenants",
    )


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 (the OAuth token type, not a secret)
    expires_in: int


@router.post(
    "/auth/token",
    response_model=TokenResponse,
    tags=["auth"],
    responses={401: {"description": "Wrong username or password"}},
)
async def issue_token(body: TokenRequest, request: Request) -> TokenResponse:
    async with sessions_of(request)() as session, session.begin():
        logins = await repo.find_logins(session, body.username, body.tenant)
        if len(logins) > 1:
            raise Problem(
                400, "tenant-required", "This username exists in several tenants: give `tenant`."
            )
        login = logins[0] if logins else None
        if not password_ok(body.password, login.password_hash if login else None) or login is None:
            raise Problem(
                401,
                "invalid-credentials",
                "Wrong username or password.",
                headers={"WWW-Authenticate": 'Bearer realm="cadre"'},
            )
        if not login.cadre.active:
            raise Problem(403, "account-deactivated", "This account is deactivated.")
        kid, key = await signing_key(session, login.tenant)
    principal = Principal(
        sub=login.cadre.cadre_id,
        tenant=login.tenant,
        unit_path=login.unit_path,
        roles=login.cadre.roles,
        level=login.cadre.leader_level,
    )
    return TokenResponse(
        access_token=sign_token(principal, key, kid, ttl_s=TOKEN_TTL_S), expires_in=TOKEN_TTL_S
    )


@public.get("/.well-known/jwks.json", tags=["auth"], summary="Public keys that verify tokens")
async def well_known_jwks(request: Request) -> dict[str, Any]:
    async with sessions_of(request)() as session:
        return await jwks(session)


class Me(BaseModel):
    cadre_id: str
    tenant: str
    unit_path: str
    roles: list[Role]
    level: LeaderLevel | None
    name: str | None


@router.get("/me", response_model=Me, tags=["auth"])
async def me(principal: CurrentPrincipal, request: Request) -> Me:
    async with sessions_of(request)() as session:
        cadre = await repo.find_cadre(session, principal.tenant, principal.sub)
    return Me(
        cadre_id=principal.sub,
        tenant=principal.tenant,
        unit_path=principal.unit_path,
        roles=sorted(principal.roles),
        level=principal.level,
        name=cadre.name if cadre else None,
    )


# ------------------------------------------------------------------ units


class UnitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    unit_id: str = Field(pattern=SLUG_PATTERN)
    parent_id: str | None = Field(default=None, pattern=SLUG_PATTERN)
    name: str = Field(max_length=MAX_NAME_LENGTH, pattern=NAME_PATTERN)
    level: UnitLevel


class UnitOut(BaseModel):
    unit_id: str
    parent_id: str | None
    name: str
    level: UnitLevel
    path: str


@router.get(
    "/units",
    response_model=Page[UnitOut],
    tags=["org tree"],
    summary="Units the caller may see, in tree order (by path)",
)
async def list_units(
    principal: CurrentPrincipal, request: Request, limit: Limit = 100, cursor: str | None = None
) -> Page[UnitOut]:
    within = None if sees_all(principal) else principal.unit_path
    async with sessions_of(request)() as session:
        found = await repo.page_units(
            session, principal.tenant, within=within, after=cursor, limit=limit + 1
        )
    page, next_cursor = keyset_page(found, limit, lambda u: u.path)
    return Page[UnitOut](items=[UnitOut(**u.__dict__) for u in page], next_cursor=next_cursor)


async def _visible_unit(request: Request, principal: Principal, unit_id: str) -> Unit:
    async with sessions_of(request)() as session:
        unit = await repo.find_unit(session, principal.tenant, unit_id)
    if unit is None or not (sees_all(principal) or principal.covers(unit.path)):
        raise Problem(404, "unit-not-found", f"No unit {unit_id!r} that you may see.")
    return unit


@router.get("/units/{unit_id}", response_model=UnitOut, tags=["org tree"])
async def get_unit(unit_id: str, principal: CurrentPrincipal, request: Request) -> UnitOut:
    return UnitOut(**(await _visible_unit(request, principal, unit_id)).__dict__)


def _raise_row_errors(plan: ImportPlan) -> None:
    if plan.errors:
        first = plan.errors[0]
        raise Problem(
            422,
            "invalid-change",
            f"{first.column}: {first.problem}",
            errors=[{"field": e.column, "problem": e.problem} for e in plan.errors],
        )


@router.post(
    "/units",
    response_model=UnitOut,
    status_code=201,
    tags=["org tree"],
    responses={409: {"description": "The unit exists"}},
)
async def create_unit(body: UnitIn, principal: CurrentPrincipal, request: Request) -> UnitOut:
    require_admin(principal)
    async with sessions_of(request)() as session, session.begin():
        existing = await repo.load_units(session, principal.tenant)
        if body.unit_id in existing:
            raise Problem(409, "unit-exists", f"Unit {body.unit_id!r} exists.")
        row = {
            "unit_id": body.unit_id,
            "parent_id": body.parent_id or "",
            "name": body.name,
            "level": body.level.value,
        }
        plan = plan_units([row], existing)
        _raise_row_errors(plan)
        await repo.apply_plan(session, ChangeContext.of(request, principal), plan, hash_password)
    return UnitOut(**plan.new_units[0].__dict__)


# ------------------------------------------------------------------ people


class CadreIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(pattern=r"^\S{1,64}$")
    name: str = Field(max_length=MAX_NAME_LENGTH, pattern=NAME_PATTERN)
    unit_id: str = Field(pattern=SLUG_PATTERN)
    rank: str | None = Field(default=None, max_length=100)
    leader_level: LeaderLevel | None = None
    stationed: bool = False
    roles: list[Role] = Field(default_factory=list, max_length=6)
    password: str | None = Field(
        default=None, min_length=4, max_length=256, description="initial password"
    )


class NewCadreIn(CadreIn):
    cadre_id: str = Field(pattern=SLUG_PATTERN)


class CadreOut(BaseModel):
    cadre_id: str
    username: str
    name: str
    unit_id: str
    rank: str | None
    leader_level: LeaderLevel | None
    stationed: bool
    roles: list[Role]
    active: bool


def _out(cadre: Cadre) -> CadreOut:
    return CadreOut(
        cadre_id=cadre.cadre_id,
        username=cadre.username,
        name=cadre.name,
        unit_id=cadre.unit_id,
        rank=cadre.rank,
        leader_level=cadre.leader_level,
        stationed=cadre.stationed,
        roles=sorted(cadre.roles),
        active=cadre.active,
    )


def _row(cadre_id: str, body: CadreIn) -> dict[str, str]:
    return {
        "cadre_id": cadre_id,
        "username": body.username,
        "name": body.name,
        "unit_id": body.unit_id,
        "rank": body.rank or "",
        "leader_level": body.leader_level.value if body.leader_level else "",
        "stationed": "yes" if body.stationed else "no",
        "roles": ",".join(r.value for r in body.roles),
        "password": body.password or "",
    }


@router.get(
    "/cadres",
    response_model=Page[CadreOut],
    tags=["people"],
    summary="People the caller may see: admins all, leaders their subtree, a cadre themself",
)
async def list_cadres(
    principal: CurrentPrincipal,
    request: Request,
    limit: Limit = 100,
    cursor: str | None = None,
    unit_id: Annotated[str | None, Query(description="only this unit and below")] = None,
) -> Page[CadreOut]:
    within: list[str] = []
    only: str | None = None
    if not sees_all(principal):
        if principal.has_any(Role.LEADER):
            within.append(principal.unit_path)
        else:
            only = principal.sub
    async with sessions_of(request)() as session:
        if unit_id is not None:
            unit = await repo.find_unit(session, principal.tenant, unit_id)
            if unit is None:
                raise Problem(404, "unit-not-found", f"No unit {unit_id!r}.")
            within.append(unit.path)
        found = await repo.page_cadres(
            session, principal.tenant, within=within, only=only, after=cursor, limit=limit + 1
        )
    page, next_cursor = keyset_page(found, limit, lambda c: c.cadre_id)
    return Page[CadreOut](items=[_out(c) for c in page], next_cursor=next_cursor)


@router.get("/cadres/{cadre_id}", response_model=CadreOut, tags=["people"])
async def get_cadre(cadre_id: str, principal: CurrentPrincipal, request: Request) -> CadreOut:
    async with sessions_of(request)() as session:
        cadre = await repo.find_cadre(session, principal.tenant, cadre_id)
        unit = await repo.find_unit(session, principal.tenant, cadre.unit_id) if cadre else None
    allowed = cadre is not None and (
        sees_all(principal)
        or cadre.cadre_id == principal.sub
        or (principal.has_any(Role.LEADER) and unit is not None and principal.covers(unit.path))
    )
    if cadre is None or not allowed:
        raise Problem(404, "cadre-not-found", f"No cadre {cadre_id!r} that you may see.")
    return _out(cadre)


async def _save_cadre(
    request: Request, principal: Principal, cadre_id: str, body: CadreIn, must_exist: bool
) -> CadreOut:
    require_admin(principal)
    async with sessions_of(request)() as session, session.begin():
        units = await repo.load_units(session, principal.tenant)
        existing = await repo.load_cadres(session, principal.tenant)
        if must_exist and cadre_id not in existing:
            raise Problem(404, "cadre-not-found", f"No cadre {cadre_id!r}.")
        if not must_exist and cadre_id in existing:
            raise Problem(409, "cadre-exists", f"Cadre {cadre_id!r} exists.")
        with_password = await repo.accounts_with_password(session, principal.tenant)
        plan = plan_people([_row(cadre_id, body)], units, existing, with_password)
        _raise_row_errors(plan)
        await repo.apply_plan(session, ChangeContext.of(request, principal), plan, hash_password)
        saved = await repo.find_cadre(session, principal.tenant, cadre_id)
    assert saved is not None
    return _out(saved)


@router.post("/cadres", response_model=CadreOut, status_code=201, tags=["people"])
async def register_cadre(
    body: NewCadreIn, principal: CurrentPrincipal, request: Request
) -> CadreOut:
    return await _save_cadre(request, principal, body.cadre_id, body, must_exist=False)


@router.put(
    "/cadres/{cadre_id}",
    response_model=CadreOut,
    tags=["people"],
    summary="Change a person's details, roles or unit (a unit change is a transfer)",
)
async def update_cadre(
    cadre_id: str, body: CadreIn, principal: CurrentPrincipal, request: Request
) -> CadreOut:
    return await _save_cadre(request, principal, cadre_id, body, must_exist=True)


class PasswordIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    password: str = Field(min_length=8, max_length=256)


@router.post(
    "/cadres/{cadre_id}/password",
    status_code=204,
    tags=["people"],
    summary="Set a password: your own, or anyone's as an admin",
)
async def change_password(
    cadre_id: str, body: PasswordIn, principal: CurrentPrincipal, request: Request
) -> None:
    if cadre_id != principal.sub:
        require_admin(principal)
    async with sessions_of(request)() as session, session.begin():
        if not await repo.set_password(
            session, principal.tenant, cadre_id, hash_password(body.password)
        ):
            raise Problem(404, "cadre-not-found", f"No cadre {cadre_id!r}.")


# ------------------------------------------------------------------ geofences


class GeofenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(default="", max_length=200)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    radius_m: float = Field(gt=0, le=50_000)


@router.put(
    "/units/{unit_id}/geofences/{fence_id}", response_model=GeofenceSetData, tags=["geofences"]
)
async def put_geofence(
    unit_id: str,
    fence_id: Annotated[str, Field(min_length=1, max_length=64)],
    body: GeofenceIn,
    principal: CurrentPrincipal,
    request: Request,
) -> GeofenceSetData:
    require_admin(principal)
    unit = await _visible_unit(request, principal, unit_id)
    fence = GeofenceSetData(unit_id=unit_id, fence_id=fence_id, **body.model_dump())
    async with sessions_of(request)() as session, session.begin():
        await repo.set_geofence(session, ChangeContext.of(request, principal), unit, fence)
    return fence


@router.get("/units/{unit_id}/geofences", response_model=list[GeofenceSetData], tags=["geofences"])
async def get_geofences(
    unit_id: str, principal: CurrentPrincipal, request: Request
) -> list[GeofenceSetData]:
    await _visible_unit(request, principal, unit_id)
    async with sessions_of(request)() as session:
        return list(await repo.list_geofences(session, principal.tenant, unit_id))


# ------------------------------------------------------------------ calendar


class OverrideIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    workday: bool | None = Field(
        description="true: worked, false: day off, null: remove the override"
    )
    note: str = Field(default="", max_length=200)


class CalendarOut(BaseModel):
    year: int
    officially_covered: bool
    workdays: int
    overrides: dict[date, OverrideIn]


@router.put("/calendar/{day}", status_code=204, tags=["calendar"])
async def put_override(
    day: date, body: OverrideIn, principal: CurrentPrincipal, request: Request
) -> None:
    require_admin(principal)
    async with sessions_of(request)() as session, session.begin():
        await repo.set_workday_override(
            session,
            ChangeContext.of(request, principal),
            f"/{principal.tenant}",
            day,
            body.workday,
            body.note,
        )


@router.get("/calendar", response_model=CalendarOut, tags=["calendar"])
async def get_calendar(
    principal: CurrentPrincipal, request: Request, year: Annotated[int, Query(ge=2004, le=2100)]
) -> CalendarOut:
    async with sessions_of(request)() as session:
        overrides = await repo.workday_overrides(session, principal.tenant, year)
    calendar = WorkdayCalendar({day: workday for day, (workday, _) in overrides.items()})
    return CalendarOut(
        year=year,
        officially_covered=calendar.officially_covered(date(year, 6, 1)),
        workdays=calendar.count_workdays(date(year, 1, 1), date(year, 12, 31)),
        overrides={day: OverrideIn(workday=w, note=n) for day, (w, n) in sorted(overrides.items())},
    )


# ------------------------------------------------------------------ bulk import


class ImportReport(BaseModel):
    applied: bool
    dry_run: bool
    rows: int
    new_units: int = 0
    new_cadres: int = 0
    updated_cadres: int = 0
    passwords_set: int = 0


async def _read_upload(file: UploadFile) -> tuple[list[str], list[dict[str, str]]]:
    try:
        return read_table(await file.read())
    except UnreadableFile as exc:
        raise Problem(422, "unreadable-file", str(exc)) from exc


def _reject(errors: list[RowError]) -> None:
    if errors:
        raise Problem(
            422,
            "import-rejected",
            f"Nothing was imported: {len(errors)} problem(s) in the file.",
            errors=[{"row": e.row, "column": e.column, "problem": e.problem} for e in errors],
        )


@router.post(
    "/imports/units",
    response_model=ImportReport,
    tags=["bulk import"],
    summary="Import units from CSV or XLSX (all or nothing); columns: " + ", ".join(UNIT_COLUMNS),
)
async def import_units(
    file: Annotated[UploadFile, File()],
    principal: CurrentPrincipal,
    request: Request,
    dry_run: bool = False,
) -> ImportReport:
    require_admin(principal)
    header, rows = await _read_upload(file)
    _reject(check_header(header, UNIT_COLUMNS))
    async with sessions_of(request)() as session, session.begin():
        plan = plan_units(rows, await repo.load_units(session, principal.tenant))
        _reject(plan.errors)
        if not dry_run:
            await repo.apply_plan(
                session, ChangeContext.of(request, principal), plan, hash_password
            )
    return ImportReport(
        applied=not dry_run, dry_run=dry_run, rows=len(rows), new_units=len(plan.new_units)
    )


@router.post(
    "/imports/people",
    response_model=ImportReport,
    tags=["bulk import"],
    summary="Import people from CSV or XLSX (all or nothing); columns: "
    + ", ".join(PEOPLE_COLUMNS)
    + ", optional password (initial only)",
)
async def import_people(
    file: Annotated[UploadFile, File()],
    principal: CurrentPrincipal,
    request: Request,
    dry_run: bool = False,
) -> ImportReport:
    require_admin(principal)
    header, rows = await _read_upload(file)
    _reject(check_header(header, PEOPLE_COLUMNS, OPTIONAL_PEOPLE_COLUMNS))
    async with sessions_of(request)() as session, session.begin():
        units = await repo.load_units(session, principal.tenant)
        existing = await repo.load_cadres(session, principal.tenant)
        plan = plan_people(
            rows, units, existing, await repo.accounts_with_password(session, principal.tenant)
        )
        _reject(plan.errors)
        if not dry_run:
            await repo.apply_plan(
                session, ChangeContext.of(request, principal), plan, hash_password
            )
    return ImportReport(
        applied=not dry_run,
        dry_run=dry_run,
        rows=len(rows),
        new_cadres=len(plan.new_cadres),
        updated_cadres=len(plan.updated_cadres),
        passwords_set=len(plan.passwords),
    )
