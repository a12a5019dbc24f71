"""The query API (DESIGN section 9), scoped by the token: a cadre sees themself, a leader
their subtree, org-department admins the whole tenant. Plus voiding a contribution after
an appeal."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from cadre.events.auth import CurrentPrincipal, Principal
from cadre.events.catalogue import ContributionVoided, ContributionVoidedData
from cadre.events.context import ChangeContext
from cadre.events.pagination import DEFAULT_LIMIT, MAX_LIMIT, number_cursor
from cadre.events.problems import Problem
from cadre.events.query import day_query
from cadre.events.store import ConcurrencyError, append
from cadre.events.units import covers, in_subtree
from cadre.events.vocabulary import ADMIN_ROLES, READ_ALL_ROLES, Dimension, Light, Role
from cadre.scoring.adapters import queries
from cadre.scoring.adapters.generations import list_generations
from cadre.scoring.adapters.rankings import composites_from_store
from cadre.scoring.adapters.tables import facts, lights, members
from cadre.scoring.domain.periods import PeriodError, period_bounds
from cadre.scoring.domain.stars import percentiles
from cadre.scoring.entrypoints.jobs import ScoringState

router = APIRouter()
PeriodQuery = Annotated[
    str | None,
    Query(
        description="2026-11-20, 2026-W47, 2026-11, 2026-Q4, 2026-H2 or 2026; "
        "default: this month in the tenant's time zone",
        max_length=10,
    ),
]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Cursor = Annotated[str | None, Query(max_length=200)]
MAX_TIMELINE_DAYS = 366


def state_of(request: Request) -> ScoringState:
    state: ScoringState = request.app.state.scoring
    return state


def _period(state: ScoringState, tenant: str, period: str | None) -> tuple[str, date, date]:
    if period is None:
        today = state.today(tenant)
        period = f"{today.year}-{today.month:02d}"
    try:
        start, end = period_bounds(period)
    except PeriodError as exc:
        raise Problem(422, "invalid-period", str(exc)) from exc
    return period, start, end


def _leads(principal: Principal) -> bool:
    return principal.has_any(Role.LEADER) or principal.level is not None


async def _visible_member(
    request: Request, principal: Principal, generation: int, cadre_id: str
) -> Any:
    """The cadre's row if the caller may see them; 404 (not 403) otherwise, so ids of
    other people's cadres are not confirmed."""
    async with state_of(request).reads() as session:
        row = await queries.member(session, generation, principal.tenant, cadre_id)
    allowed = principal.sub == cadre_id or principal.has_any(*READ_ALL_ROLES)
    if row is not None and not allowed and _leads(principal):
        allowed = principal.covers(row.unit_path)
    if row is None and principal.sub == cadre_id:
        raise Problem(404, "not-scored-yet", "No scores yet: the directory has not been seen.")
    if row is None or not allowed:
        raise Problem(404, "cadre-not-found", f"No cadre {cadre_id!r} that you may see.")
    return row


async def _visible_unit(
    request: Request, principal: Principal, generation: int, unit_id: str
) -> Any:
    async with state_of(request).reads() as session:
        row = await queries.unit(session, generation, principal.tenant, unit_id)
    allowed = row is not None and (
        principal.has_any(*READ_ALL_ROLES) or (_leads(principal) and principal.covers(row.path))
    )
    if row is None or not allowed:
        raise Problem(404, "unit-not-found", f"No unit {unit_id!r} that you may see.")
    return row


class RadarOut(BaseModel):
    cadre_id: str
    period: str
    dimensions: dict[Dimension, float]
    composite: float
    generation: int
    ruleset_version: str


@router.get("/cadres/{cadre_id}/radar", tags=["scores"], summary="Five dimensions and composite")
async def radar(
    cadre_id: str, request: Request, principal: CurrentPrincipal, period: PeriodQuery = None
) -> RadarOut:
    state = state_of(request)
    generation = await state.generation()
    await _visible_member(request, principal, generation, cadre_id)
    name, start, end = _period(state, principal.tenant, period)
    ruleset = state.rulesets.for_tenant(principal.tenant)
    async with state.reads() as session:
        totals = await queries.dimension_totals(
            session, generation, principal.tenant, cadre_id, start, end
        )
    composite = round(sum(ruleset.weights[d] * v for d, v in totals.items()), 6)
    return RadarOut(
        cadre_id=cadre_id,
        period=name,
        dimensions=totals,
        composite=composite,
        generation=generation,
        ruleset_version=ruleset.version,
    )


class UnitAverageOut(BaseModel):
    cadre_id: str
    unit_path: str = Field(description="the cadre's unit; the average covers it and below")
    period: str
    members: int = Field(description="active members averaged (those with no points count 0)")
    dimensions: dict[Dimension, float]
    composite: float
    generation: int


@router.get(
    "/cadres/{cadre_id}/unit-average",
    tags=["scores"],
    summary="The average radar of the cadre's unit, to overlay on the cadre's own",
)
async def unit_average(
    cadre_id: str, request: Request, principal: CurrentPrincipal, period: PeriodQuery = None
) -> UnitAverageOut:
    state = state_of(request)
    generation = await state.generation()
    member = await _visible_member(request, principal, generation, cadre_id)
    name, start, end = _period(state, principal.tenant, period)
    ruleset = state.rulesets.for_tenant(principal.tenant)
    async with state.reads() as session:
        count, averages = await queries.unit_dimension_averages(
            session, generation, principal.tenant, member.unit_path, start, end
        )
    return UnitAverageOut(
        cadre_id=cadre_id,
        unit_path=member.unit_path,
        period=name,
        members=count,
        dimensions=averages,
        composite=round(sum(ruleset.weights[d] * v for d, v in averages.items()), 6),
        generation=generation,
    )


class ContributionOut(BaseModel):
    event_id: uuid.UUID
    day: date
    dimension: Dimension
    rule: str
    raw_points: float
    cap_effect: float = Field(description="points removed by a cap (negative or 0)")
    points: float = Field(description="what the score counts")
    voided: bool


class ExplainOut(BaseModel):
    cadre_id: str
    period: str
    dimension: Dimension | None
    total: float = Field(description="the sum of every contribution's points: the radar value")
    count: int
    generation: int
    items: list[ContributionOut]
    next_cursor: str | None


@router.get(
    "/cadres/{cadre_id}/explain",
    tags=["scores"],
    summary="Every contribution behind a score, with its event, rule, points and cap effect",
)
async def explain(
    cadre_id: str,
    request: Request,
    principal: CurrentPrincipal,
    period: PeriodQuery = None,
    dimension: Dimension | None = None,
    limit: Limit = MAX_LIMIT,
    cursor: Cursor = None,
) -> ExplainOut:
    state = state_of(request)
    generation = await state.generation()
    await _visible_member(request, principal, generation, cadre_id)
    name, start, end = _period(state, principal.tenant, period)
    async with state.reads() as session:
        items = await queries.explain_rows(
            session, generation, principal.tenant, cadre_id, start, end, dimension
        )
    offset = _offset(cursor)
    page = items[offset : offset + limit]
    return ExplainOut(
        cadre_id=cadre_id,
        period=name,
        dimension=dimension,
        total=round(sum(item.points for item in items), 6),
        count=len(items),
        generation=generation,
        items=[
            ContributionOut(
                event_id=item.event_id,
                day=item.day,
                dimension=item.dimension,
                rule=item.rule,
                raw_points=item.raw_points,
                cap_effect=round(item.cap_effect, 6),
                points=item.points,
                voided=item.voided,
            )
            for item in page
        ],
        next_cursor=str(offset + limit) if offset + limit < len(items) else None,
    )


def _offset(cursor: str | None) -> int:
    if cursor is None:
        return 0
    return number_cursor(cursor)


class TimelineDay(BaseModel):
    day: date
    workday: bool
    dimensions: dict[Dimension, float]
    composite: float


class TimelineOut(BaseModel):
    cadre_id: str
    generation: int
    days: list[TimelineDay]


@router.get("/cadres/{cadre_id}/timeline", tags=["scores"], summary="Daily points, day by day")
async def timeline(
    cadre_id: str,
    request: Request,
    principal: CurrentPrincipal,
    start: Annotated[date | None, day_query("from")] = None,
    end: Annotated[date | None, day_query("to")] = None,
) -> TimelineOut:
    state = state_of(request)
    generation = await state.generation()
    await _visible_member(request, principal, generation, cadre_id)
    end = end or state.today(principal.tenant)
    start = start or end - timedelta(days=29)
    if start > end:
        raise Problem(422, "invalid-range", "`from` must not be after `to`.")
    if (end - start).days >= MAX_TIMELINE_DAYS:
        raise Problem(422, "range-too-long", f"Ask for at most {MAX_TIMELINE_DAYS} days.")
    ruleset = state.rulesets.for_tenant(principal.tenant)
    async with state.reads() as session:
        totals = await queries.daily_totals(
            session, generation, principal.tenant, cadre_id, start, end
        )
        calendar = await queries.calendar(session, generation, principal.tenant)
    days = []
    day = start
    while day <= end:
        dimensions = totals.get(day, dict.fromkeys(Dimension, 0.0))
        days.append(
            TimelineDay(
                day=day,
                workday=calendar.is_workday(day),
                dimensions=dimensions,
                composite=round(sum(ruleset.weights[d] * v for d, v in dimensions.items()), 6),
            )
        )
        day += timedelta(days=1)
    return TimelineOut(cadre_id=cadre_id, generation=generation, days=days)


class RankedCadre(BaseModel):
    rank: int
    cadre_id: str
    name: str
    composite: float


class RankingOut(BaseModel):
    unit_id: str
    unit_path: str
    period: str
    generation: int
    total: int
    rebuilt: bool = Field(description="true when the ranking was rebuilt from PostgreSQL")
    items: list[RankedCadre]
    next_cursor: str | None


@router.get(
    "/units/{unit_id}/ranking",
    tags=["rankings"],
    summary="Everyone in the unit and below, best first (served from Redis)",
)
async def ranking(
    unit_id: str,
    request: Request,
    principal: CurrentPrincipal,
    period: PeriodQuery = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> RankingOut:
    state = state_of(request)
    generation = await state.generation()
    unit = await _visible_unit(request, principal, generation, unit_id)
    name, start, end = _period(state, principal.tenant, period)
    offset = _offset(cursor)
    async with state.reads() as session:
        ordered, rebuilt = await state.rankings.read(
            session,
            generation,
            principal.tenant,
            unit.path,
            name,
            (start, end),
            state.rulesets.for_tenant(principal.tenant),
        )
        page = ordered[offset : offset + limit]
        names = await queries.member_names(
            session, generation, principal.tenant, [c for c, _ in page]
        )
    return RankingOut(
        unit_id=unit_id,
        unit_path=unit.path,
        period=name,
        generation=generation,
        total=len(ordered),
        rebuilt=rebuilt,
        items=[
            RankedCadre(rank=offset + i + 1, cadre_id=c, name=names.get(c, c), composite=v)
            for i, (c, v) in enumerate(page)
        ],
        next_cursor=str(offset + limit) if offset + limit < len(ordered) else None,
    )


class LightOut(BaseModel):
    cadre_id: str
    name: str
    light: Light
    reasons: list[str]
    as_of: date | None
    changed_at: datetime | None


class LightsOut(BaseModel):
    unit_id: str
    generation: int
    summary: dict[Light, int]
    items: list[LightOut]
    next_cursor: str | None


@router.get(
    "/units/{unit_id}/lights",
    tags=["lights"],
    summary="Red, yellow and green in the unit and below, with reasons (red first)",
)
async def unit_lights(
    unit_id: str,
    request: Request,
    principal: CurrentPrincipal,
    light: Light | None = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> LightsOut:
    state = state_of(request)
    generation = await state.generation()
    unit = await _visible_unit(request, principal, generation, unit_id)
    async with state.reads() as session:
        rows = await session.execute(
            sa.select(
                members.c.cadre_id,
                members.c.name,
                lights.c.light,
                lights.c.reasons,
                lights.c.as_of,
                lights.c.changed_at,
            )
            .select_from(
                members.outerjoin(
                    lights,
                    sa.and_(
                        lights.c.generation == members.c.generation,
                        lights.c.tenant == members.c.tenant,
                        lights.c.cadre_id == members.c.cadre_id,
                    ),
                )
            )
            .where(
                members.c.generation == generation,
                members.c.tenant == principal.tenant,
                members.c.active.is_(True),
                in_subtree(members.c.unit_path, unit.path),
            )
        )
        # Not assessed yet means nothing has been found against the cadre: green.
        everyone = [
            LightOut(
                cadre_id=row.cadre_id,
                name=row.name,
                light=Light(row.light or Light.GREEN.value),
                reasons=list(row.reasons or []),
                as_of=row.as_of,
                changed_at=row.changed_at,
            )
            for row in rows
        ]
    severity = {Light.RED: 0, Light.YELLOW: 1, Light.GREEN: 2}
    everyone.sort(key=lambda item: (severity[item.light], item.cadre_id))
    summary = dict.fromkeys(Light, 0)
    for item in everyone:
        summary[item.light] += 1
    chosen = [item for item in everyone if light is None or item.light is light]
    offset = _offset(cursor)
    return LightsOut(
        unit_id=unit_id,
        generation=generation,
        summary=summary,
        items=chosen[offset : offset + limit],
        next_cursor=str(offset + limit) if offset + limit < len(chosen) else None,
    )


class StarsOut(BaseModel):
    period: str
    generation: int
    items: list[dict[str, Any]]
    next_cursor: str | None


@router.get(
    "/units/{unit_id}/stars",
    tags=["stars"],
    summary="Half-yearly stars by percentile of the composite within the tenant",
)
async def unit_stars(
    unit_id: str,
    request: Request,
    principal: CurrentPrincipal,
    period: Annotated[str | None, Query(pattern=r"^[1-9]\d{3}-H[12]$")] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> StarsOut:
    state = state_of(request)
    generation = await state.generation()
    unit = await _visible_unit(request, principal, generation, unit_id)
    name, items = await _stars(state, generation, principal.tenant, period)
    subtree = [i for i in items if covers(unit.path, i["unit_path"])]
    offset = _offset(cursor)
    return StarsOut(
        period=name,
        generation=generation,
        items=subtree[offset : offset + limit],
        next_cursor=str(offset + limit) if offset + limit < len(subtree) else None,
    )


@router.get("/cadres/{cadre_id}/stars", tags=["stars"], summary="One cadre's half-year stars")
async def cadre_stars(
    cadre_id: str,
    request: Request,
    principal: CurrentPrincipal,
    period: Annotated[str | None, Query(pattern=r"^[1-9]\d{3}-H[12]$")] = None,
) -> dict[str, Any]:
    state = state_of(request)
    generation = await state.generation()
    await _visible_member(request, principal, generation, cadre_id)
    name, items = await _stars(state, generation, principal.tenant, period)
    mine = next((i for i in items if i["cadre_id"] == cadre_id), None)
    if mine is None:
        raise Problem(404, "cadre-not-found", f"Cadre {cadre_id!r} is not active.")
    return {"period": name, "generation": generation, **mine}


async def _stars(
    state: ScoringState, generation: int, tenant: str, period: str | None
) -> tuple[str, list[dict[str, Any]]]:
    if period is None:
        today = state.today(tenant)
        period = f"{today.year}-H{1 if today.month <= 6 else 2}"
    try:
        bounds = period_bounds(period)
    except PeriodError as exc:
        raise Problem(422, "invalid-period", str(exc)) from exc
    ruleset = state.rulesets.for_tenant(tenant)
    async with state.reads() as session:
        scores = await composites_from_store(
            session, generation, tenant, "/", bounds, ruleset.weights
        )
        rows = await queries.active_members(session, generation, tenant)
    ranks = percentiles(scores)
    items = [
        {
            "cadre_id": row.cadre_id,
            "name": row.name,
            "unit_path": row.unit_path,
            "composite": scores.get(row.cadre_id, 0.0),
            "percentile": round(ranks.get(row.cadre_id, 0.0), 3),
            "stars": ruleset.stars_for(ranks.get(row.cadre_id, 0.0)),
        }
        for row in rows
    ]
    items.sort(key=lambda i: (-i["composite"], i["cadre_id"]))
    return period, items


class VoidIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=1000)


class VoidOut(BaseModel):
    voided_event_id: uuid.UUID
    event_id: uuid.UUID
    cadre_id: str


@router.post(
    "/contributions/{event_id}/void",
    status_code=202,
    tags=["appeals"],
    summary="Void one event's contribution after an appeal (org-department admins)",
)
async def void_contribution(
    event_id: uuid.UUID, body: VoidIn, request: Request, principal: CurrentPrincipal
) -> VoidOut:
    if not principal.has_any(*ADMIN_ROLES):
        raise Problem(403, "forbidden", "Only org-department admins void contributions.")
    state = state_of(request)
    generation = await state.generation()
    async with state.sessions() as session, session.begin():
        target = (
            await session.execute(
                sa.select(facts.c.cadre_id)
                .where(
                    facts.c.generation == generation,
                    facts.c.tenant == principal.tenant,
                    facts.c.event_id == event_id,
                )
                .limit(1)
            )
        ).first()
        if target is None:
            raise Problem(404, "contribution-not-found", f"No scored event {event_id}.")
        row = await queries.member(session, generation, principal.tenant, target.cadre_id)
        event = ContributionVoided(
            **ChangeContext.of(request, principal).envelope(
                target.cadre_id, row.unit_path if row is not None else principal.unit_path
            ),
            data=ContributionVoidedData(
                voided_event_id=event_id, reason=body.reason, voided_by=principal.sub
            ),
        )
        try:
            await append(session, f"void:{event_id}", 0, [event])
        except ConcurrencyError as exc:
            raise Problem(409, "already-voided", f"Event {event_id} is already voided.") from exc
    return VoidOut(voided_event_id=event_id, event_id=event.id, cadre_id=target.cadre_id)


class RulesetOut(BaseModel):
    tenant: str
    version: str
    source: str
    error: str | None = Field(description="why the newest file was rejected, if it was")


@router.get("/ruleset", tags=["rulesets"], summary="The caller's tenant's active ruleset")
async def active_ruleset(request: Request, principal: CurrentPrincipal) -> RulesetOut:
    book = state_of(request).rulesets
    active = book.active(principal.tenant)
    return RulesetOut(
        tenant=principal.tenant,
        version=active.ruleset.version,
        source=active.source,
        error=book.errors.get(principal.tenant),
    )


@router.get("/generations", tags=["operations"], summary="Projection generations (admins)")
async def generations(request: Request, principal: CurrentPrincipal) -> dict[str, Any]:
    if not principal.has_any(*READ_ALL_ROLES):
        raise Problem(403, "forbidden", "Only admins see generations.")
    state = state_of(request)
    async with state.reads() as session:
        rows = await list_generations(session)
    return {
        "live": await state.generation(),
        "generations": [
            {
                "generation": r.generation,
                "status": r.status,
                "consumer_group": r.consumer_group,
                "created_at": r.created_at,
                "switched_at": r.switched_at,
            }
            for r in rows
        ],
    }
