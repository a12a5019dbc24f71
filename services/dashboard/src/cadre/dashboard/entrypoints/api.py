"""What the page reads. Each panel has its own call, so a service that is down fails only
its panels (503 `service-unavailable` naming the service) and the rest of the page works."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import date, datetime
from typing import Annotated, Any
from urllib.parse import quote

import httpx
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse

from cadre.dashboard.adapters.export import ranking_workbook
from cadre.dashboard.domain.periods import current_periods, half_year_of
from cadre.dashboard.domain.ranking import SortKey, page_of, sort_rows, with_stars
from cadre.dashboard.domain.tree import build_tree
from cadre.dashboard.entrypoints.session import (
    CurrentSession,
    Session,
    SessionToken,
    settings_of,
    upstreams_of,
)
from cadre.events.problems import Problem
from cadre.events.query import day_query
from cadre.events.vocabulary import Dimension, Light

router = APIRouter()
Id = Annotated[str, Query(min_length=1, max_length=200)]
Period = Annotated[
    str | None,
    Query(
        pattern=r"^[1-9]\d{3}(-(0[1-9]|1[0-2])(-\d{2})?|-Q[1-4]|-H[12]|-W\d{2})?$",
        description="2026-11, 2026-Q4, 2026-H2 (as scoring names periods)",
    ),
]
RankingPeriod = Annotated[
    str | None,
    Query(
        pattern=r"^[1-9]\d{3}-((0[1-9]|1[0-2])|Q[1-4]|H[12])$", description="month, quarter or half"
    ),
]
Cursor = Annotated[str | None, Query(max_length=200)]
Language = Annotated[str, Query(pattern="^(zh-CN|en)$")]
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _segment(value: str) -> str:
    return quote(value, safe="")


@router.get("/tree", tags=["org tree"], summary="The units the viewer may see, nested")
async def tree(request: Request, token: SessionToken) -> list[dict[str, Any]]:
    units = await upstreams_of(request).get_all(
        "directory", "/v1/units", token, limit=settings_of(request).max_unit_members
    )
    return build_tree(units)


@router.get("/units/{unit_id}", tags=["units"], summary="One unit")
async def unit(unit_id: str, request: Request, token: SessionToken) -> Any:
    return await upstreams_of(request).get("directory", f"/v1/units/{_segment(unit_id)}", token)


@router.get("/units/{unit_id}/lights", tags=["units"], summary="Light counts and the list")
async def lights(
    unit_id: str,
    request: Request,
    token: SessionToken,
    light: Light | None = None,
    cursor: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Any:
    return await upstreams_of(request).get(
        "scoring",
        f"/v1/units/{_segment(unit_id)}/lights",
        token,
        light=light.value if light else None,
        cursor=cursor,
        limit=limit,
    )


async def _ranking_rows(
    request: Request, session: Session, unit_id: str, period: str | None
) -> tuple[str, list[Any], bool]:
    """The whole ranking with stars (default: this month in the tenant's zone); the flag
    says whether stars could be read."""
    upstreams = upstreams_of(request)
    settings = settings_of(request)
    limit = settings.max_unit_members
    token = session.token
    path = f"/v1/units/{_segment(unit_id)}"
    period = period or current_periods(settings.today(session.principal.tenant))["month"]
    ranked_call = upstreams.get_all("scoring", path + "/ranking", token, limit=limit, period=period)
    stars_call = upstreams.get_all(
        "scoring", path + "/stars", token, limit=limit, period=half_year_of(period)
    )
    results: tuple[list[dict[str, Any]] | BaseException, ...] = await asyncio.gather(
        ranked_call, stars_call, return_exceptions=True
    )
    ranked, stars_list = results
    if isinstance(ranked, BaseException):
        raise ranked
    stars: dict[str, int] | None = None
    if not isinstance(stars_list, BaseException):
        stars = {str(s["cadre_id"]): int(s["stars"]) for s in stars_list}
    return period, with_stars(ranked, stars), stars is not None


@router.get(
    "/units/{unit_id}/ranking",
    tags=["units"],
    summary="The unit's ranking with half-year stars, sorted and cut into pages",
)
async def ranking(
    unit_id: str,
    request: Request,
    session: CurrentSession,
    period: RankingPeriod = None,
    sort: SortKey = SortKey.RANK,
    order: Annotated[str, Query(pattern="^(asc|desc)$")] = "asc",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    size: Annotated[int, Query(ge=1, le=200)] = 20,
) -> dict[str, Any]:
    period, rows, stars_known = await _ranking_rows(request, session, unit_id, period)
    chosen = page_of(sort_rows(rows, sort, order == "desc"), page, size)
    return {
        "unit_id": unit_id,
        "period": period,
        "stars_period": half_year_of(period),
        "stars_known": stars_known,
        "sort": sort.value,
        "order": order,
        "page": chosen.page,
        "pages": chosen.pages,
        "total": chosen.total,
        "items": [row.as_dict() for row in chosen.rows],
    }


@router.get(
    "/units/{unit_id}/ranking.xlsx",
    tags=["units"],
    summary="The whole ranking as an Excel workbook",
    response_class=Response,
    responses={200: {"content": {XLSX_TYPE: {}}}},
)
async def ranking_export(
    unit_id: str,
    request: Request,
    session: CurrentSession,
    period: RankingPeriod = None,
    lang: Language = "zh-CN",
) -> Response:
    period_name, rows, _ = await _ranking_rows(request, session, unit_id, period)
    about = await upstreams_of(request).get(
        "directory", f"/v1/units/{_segment(unit_id)}", session.token
    )
    zone = settings_of(request).zone_of(session.principal.tenant)
    content = ranking_workbook(
        rows,
        unit_name=str(about.get("name") or unit_id),
        period=period_name,
        generated_at=datetime.now(zone),
        language=lang,
    )
    filename = f"ranking-{unit_id}-{period_name}.xlsx"
    return Response(
        content,
        media_type=XLSX_TYPE,
        headers={"content-disposition": f"attachment; filename*=UTF-8''{quote(filename)}"},
    )


@router.get(
    "/units/{unit_id}/stationing",
    tags=["units"],
    summary="Days present per stationed cadre in a month, with names",
)
async def stationing(
    unit_id: str,
    request: Request,
    token: SessionToken,
    month: Annotated[str, Query(pattern=r"^[1-9]\d{3}-(0[1-9]|1[0-2])$")],
) -> Any:
    upstreams = upstreams_of(request)
    report = await upstreams.get(
        "attendance", "/v1/reports/stationing", token, unit_id=unit_id, month=month
    )
    with contextlib.suppress(Problem):  # without the directory, ids stand in for names
        people = await upstreams.get_all(
            "directory",
            "/v1/cadres",
            token,
            limit=settings_of(request).max_unit_members,
            unit_id=unit_id,
        )
        names = {p["cadre_id"]: p["name"] for p in people}
        for row in report["rows"]:
            row["name"] = names.get(row["cadre_id"], row["cadre_id"])
    return report


@router.get("/cadres/{cadre_id}", tags=["cadres"], summary="One cadre from the directory")
async def cadre(cadre_id: str, request: Request, token: SessionToken) -> Any:
    return await upstreams_of(request).get("directory", f"/v1/cadres/{_segment(cadre_id)}", token)


@router.get(
    "/cadres/{cadre_id}/radar",
    tags=["cadres"],
    summary="The cadre's five dimensions and their unit's average for one period",
)
async def radar(cadre_id: str, request: Request, token: SessionToken, period: Period = None) -> Any:
    upstreams = upstreams_of(request)
    path = f"/v1/cadres/{_segment(cadre_id)}"
    own, average = await asyncio.gather(
        upstreams.get("scoring", path + "/radar", token, period=period),
        upstreams.get("scoring", path + "/unit-average", token, period=period),
    )
    return {"radar": own, "unit_average": average}


@router.get("/cadres/{cadre_id}/stars", tags=["cadres"], summary="The cadre's half-year stars")
async def cadre_stars(cadre_id: str, request: Request, token: SessionToken) -> Any:
    return await upstreams_of(request).get(
        "scoring", f"/v1/cadres/{_segment(cadre_id)}/stars", token
    )


@router.get("/cadres/{cadre_id}/timeline", tags=["cadres"], summary="Daily composite")
async def timeline(
    cadre_id: str,
    request: Request,
    token: SessionToken,
    start: Annotated[date | None, day_query("from")] = None,
    end: Annotated[date | None, day_query("to")] = None,
) -> Any:
    return await upstreams_of(request).get(
        "scoring",
        f"/v1/cadres/{_segment(cadre_id)}/timeline",
        token,
        **{"from": start.isoformat() if start else None, "to": end.isoformat() if end else None},
    )


@router.get("/cadres/{cadre_id}/explain", tags=["cadres"], summary="Contributions behind a score")
async def explain(
    cadre_id: str,
    request: Request,
    token: SessionToken,
    dimension: Dimension,
    period: Period = None,
    cursor: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Any:
    return await upstreams_of(request).get(
        "scoring",
        f"/v1/cadres/{_segment(cadre_id)}/explain",
        token,
        period=period,
        dimension=dimension.value,
        cursor=cursor,
        limit=limit,
    )


@router.get("/cadres/{cadre_id}/entries", tags=["cadres"], summary="Recent journal entries")
async def entries(
    cadre_id: str,
    request: Request,
    token: SessionToken,
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
    cursor: Cursor = None,
) -> Any:
    return await upstreams_of(request).get(
        "journal", "/v1/feed", token, cadre_id=cadre_id, limit=limit, cursor=cursor
    )


@router.get("/notifications", tags=["live"], summary="The viewer's latest notifications")
async def notifications(
    request: Request,
    token: SessionToken,
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> Any:
    return await upstreams_of(request).get("notify", "/v1/inbox", token, limit=limit)


@router.get(
    "/stream",
    tags=["live"],
    summary="The viewer's notifications as they happen (Server-Sent Events, from notify)",
    response_class=StreamingResponse,
)
async def stream(request: Request, token: SessionToken) -> StreamingResponse:
    headers = {"accept": "text/event-stream"}
    resume = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
    if resume:
        headers["last-event-id"] = resume
    stack = contextlib.AsyncExitStack()
    upstream = await stack.enter_async_context(
        upstreams_of(request).stream("notify", "/v1/stream", token, headers)
    )

    async def relay() -> AsyncIterator[bytes]:
        try:
            async for chunk in upstream.aiter_raw():
                yield chunk
        except httpx.HTTPError:
            return  # notify went away: end the stream, the page reconnects
        finally:
            await stack.aclose()

    return StreamingResponse(
        relay(),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )
