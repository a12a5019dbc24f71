from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cadre.dashboard import __doc__ as service_doc
from cadre.dashboard.adapters.upstream import Upstreams
from cadre.dashboard.entrypoints import api, session
from cadre.dashboard.settings import DashboardSettings
from cadre.events.auth import JwksVerifier
from cadre.events.service import create_web_app

STATIC = Path(str(files("cadre.dashboard").joinpath("static")))
# The page may load and call nothing but this server: an intranet has no internet, and a
# request elsewhere would leak who looks at whom.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self'; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).extend(
                    [
                        (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
                        (b"x-content-type-options", b"nosniff"),
                        (b"referrer-policy", b"no-referrer"),
                    ]
                )
            await send(message)

        await self.app(scope, receive, with_headers if scope["type"] == "http" else send)


def create_app(settings: DashboardSettings | None = None) -> FastAPI:
    settings = settings or DashboardSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.upstreams = Upstreams(settings.upstreams(), settings.upstream_timeout_s)
        app.state.verifier = JwksVerifier(
            settings.directory_url.rstrip("/") + "/.well-known/jwks.json", min_refresh_s=5
        )
        try:
            yield
        finally:
            await app.state.upstreams.aclose()

    def checks(app: FastAPI) -> dict[str, Callable[[], Awaitable[Any]]]:
        upstreams: Upstreams = app.state.upstreams

        def alive(service: str) -> Callable[[], Awaitable[Any]]:
            async def check() -> None:
                url = upstreams.urls[service].rstrip("/") + "/healthz"
                (await upstreams.client.get(url, timeout=2)).raise_for_status()

            return check

        return {service: alive(service) for service in upstreams.urls}

    pages = APIRouter(include_in_schema=False)

    @pages.get("/")
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"cache-control": "no-cache"})

    app = create_web_app(
        settings,
        title="cadre dashboard",
        description=service_doc or "",
        lifespan=lifespan,
        readiness_checks=checks,
        routers=[session.router, api.router],
        root_routers=[pages],
    )
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(SecurityHeaders)
    return app
