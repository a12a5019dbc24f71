"""Log in through the directory's token endpoint; the token lives in an HttpOnly cookie
(scripts on the page never see it) and is verified on every call, so an expired token ends
the session and every upstream answer is scoped by it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

import jwt
from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from cadre.dashboard.adapters.upstream import Upstreams
from cadre.dashboard.domain.periods import current_periods
from cadre.dashboard.settings import DashboardSettings
from cadre.events.auth import JwksVerifier, Principal, TokenError
from cadre.events.problems import Problem
from cadre.events.vocabulary import READ_ALL_ROLES, Role

router = APIRouter(tags=["session"])
COOKIE = "cadre_session"


def upstreams_of(request: Request) -> Upstreams:
    upstreams: Upstreams = request.app.state.upstreams
    return upstreams


def settings_of(request: Request) -> DashboardSettings:
    settings: DashboardSettings = request.app.state.settings
    return settings


async def _verified(request: Request, token: str) -> Principal:
    verifier: JwksVerifier = request.app.state.verifier
    try:
        return await verifier.verify(token)
    except TokenError as exc:
        raise Problem(401, "session-expired", f"Log in again ({exc}).") from exc


@dataclass(frozen=True)
class Session:
    token: str
    principal: Principal


async def current_session(request: Request) -> Session:
    """The cookie's token, verified once per request (FastAPI caches the dependency)."""
    token = request.cookies.get(COOKIE)
    if not token:
        raise Problem(401, "not-logged-in", "Log in first.")
    return Session(token, await _verified(request, token))


CurrentSession = Annotated[Session, Depends(current_session)]


async def session_token(session: CurrentSession) -> str:
    return session.token


SessionToken = Annotated[str, Depends(session_token)]


def token_expiry(token: str) -> int:
    """The `exp` claim of a token already verified."""
    return int(jwt.decode(token, options={"verify_signature": False})["exp"])


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=500)
    tenant: str | None = Field(default=None, min_length=1, max_length=100)


class SessionOut(BaseModel):
    cadre_id: str
    name: str | None
    tenant: str
    unit_path: str
    roles: list[str]
    level: str | None
    views_units: bool = Field(description="leaders and admins see unit pages; a cadre themself")
    home_unit_id: str | None
    timezone: str
    today: str
    periods: dict[str, str]
    expires_at: datetime


def views_units(principal: Principal) -> bool:
    return principal.has_any(*READ_ALL_ROLES, Role.LEADER) or principal.level is not None


async def _session(request: Request, token: str, principal: Principal) -> SessionOut:
    settings = settings_of(request)
    zone = settings.zone_of(principal.tenant)
    today = settings.today(principal.tenant)
    name: str | None = None
    try:
        me = await upstreams_of(request).get("directory", "/v1/me", token)
        name = me.get("name")
    except Problem:
        pass  # the name is a nicety; the session works without it
    segments = [s for s in principal.unit_path.split("/") if s]
    home: str | None = None
    if views_units(principal) and segments:
        home = segments[0] if principal.has_any(*READ_ALL_ROLES) else segments[-1]
    return SessionOut(
        cadre_id=principal.sub,
        name=name,
        tenant=principal.tenant,
        unit_path=principal.unit_path,
        roles=sorted(r.value for r in principal.roles),
        level=principal.level.value if principal.level else None,
        views_units=views_units(principal),
        home_unit_id=home,
        timezone=zone.key,
        today=today.isoformat(),
        periods=current_periods(today),
        expires_at=datetime.fromtimestamp(token_expiry(token), zone),
    )


@router.post(
    "/session",
    summary="Log in with the directory's username and password",
    responses={401: {"description": "wrong username or password"}},
)
async def login(body: LoginIn, request: Request, response: Response) -> SessionOut:
    answer = await upstreams_of(request).request(
        "directory", "POST", "/v1/auth/token", None, json=body.model_dump(exclude_none=True)
    )
    token = str(answer.json()["access_token"])
    principal = await _verified(request, token)
    response.set_cookie(
        COOKIE,
        token,
        max_age=max(0, token_expiry(token) - int(time.time())),
        httponly=True,
        samesite="strict",
        secure=settings_of(request).secure_cookies,
        path="/",
    )
    return await _session(request, token, principal)


@router.get("/session", summary="Who is logged in, their tenant's time zone and periods")
async def whoami(request: Request, session: CurrentSession) -> SessionOut:
    return await _session(request, session.token, session.principal)


@router.delete("/session", status_code=204, summary="Log out")
async def logout(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
