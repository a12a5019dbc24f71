"""The one way a service process is assembled: settings, logging, database, relay,
subscribers and the FastAPI app with the shared HTTP conventions."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

import sqlalchemy as sa
import structlog
import uvicorn
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from faststream.kafka import KafkaBroker
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cadre.events.db import (
    DirectConnection,
    autocommit_engine,
    create_engine,
    direct_connection,
    migrate,
    read_session_factory,
    session_factory,
)
from cadre.events.idempotency import IdempotencyMiddleware
from cadre.events.logging import configure_logging, get_logger
from cadre.events.metrics import HTTP_REQUESTS
from cadre.events.nul_guard import NulGuardMiddleware
from cadre.events.problems import install_problem_handlers
from cadre.events.relay import OutboxRelay
from cadre.events.runtime import tune_garbage_collector
from cadre.events.settings import ServiceSettings
from cadre.events.store import AppendBatcher

log = get_logger(__name__)
SettingsT = TypeVar("SettingsT", bound=ServiceSettings)
CORRELATION_HEADER = "x-correlation-id"


@dataclass
class ServiceRuntime:
    """Connections a service holds for its lifetime; handlers reach it via `app.state.runtime`."""

    settings: ServiceSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    reads: async_sessionmaker[AsyncSession]  # autocommit: for read-only endpoints
    redis: Redis
    broker: KafkaBroker
    relay: OutboxRelay | None = None
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    @functools.cached_property
    def autocommit(self) -> AsyncEngine:
        """`engine` where each statement commits on its own (`autocommit_engine`)."""
        return autocommit_engine(self.engine)

    @functools.cached_property
    def appends(self) -> AppendBatcher:
        """Writes new streams' appends of concurrent requests together (`AppendBatcher`)."""
        return AppendBatcher(self.autocommit)


SubscriberSetup = Callable[[ServiceRuntime], None]


class CorrelationMiddleware:
    """Takes or makes a correlation id, binds it to the logs and echoes it in the response."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = dict(scope["headers"]).get(CORRELATION_HEADER.encode())
        correlation_id = raw.decode("latin-1")[:128] if raw else str(uuid.uuid4())
        scope.setdefault("state", {})["correlation_id"] = correlation_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).append(
                    (CORRELATION_HEADER.encode(), correlation_id.encode())
                )
                HTTP_REQUESTS.labels(self.service, scope["method"], str(message["status"])).inc()
            await send(message)

        with structlog.contextvars.bound_contextvars(correlation_id=correlation_id):
            await self.app(scope, receive, send_with_id)


async def _tcp_reachable(address: str, timeout_s: float = 2.0) -> None:
    host, _, port = address.split(",")[0].rpartition(":")
    _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), timeout=timeout_s)
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()


def create_service_app(
    settings: ServiceSettings,
    *,
    title: str,
    description: str,
    routers: Sequence[APIRouter] = (),
    root_routers: Sequence[APIRouter] = (),
    subscribers: SubscriberSetup | None = None,
    on_startup: Callable[[ServiceRuntime], Awaitable[None]] | None = None,
) -> FastAPI:
    """`routers` are served under /v1; `root_routers` at the root (for example
    /.well-known/jwks.json). `on_startup` runs once the runtime is ready."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(
            settings.effective_database_url, pool_size=settings.database_pool_size, max_overflow=0
        )
        runtime = ServiceRuntime(
            settings=settings,
            engine=engine,
            sessions=session_factory(engine),
            reads=read_session_factory(engine),
            redis=Redis.from_url(settings.redis_url, socket_timeout=5),
            broker=KafkaBroker(
                settings.kafka_bootstrap, client_id=f"cadre-{settings.service_name}"
            ),
        )
        app.state.runtime = runtime
        app.state.sessions = runtime.sessions
        if settings.relay_enabled:
            runtime.relay = OutboxRelay(
                service=settings.service_name,
                database_url=settings.effective_database_url,
                kafka_bootstrap=settings.kafka_bootstrap,
                batch_size=settings.relay_batch_size,
                poll_interval_s=settings.relay_poll_interval_s,
                linger_s=settings.relay_linger_s,
                keep_published_for=timedelta(days=settings.relay_keep_published_days),
            )
            runtime.tasks.append(asyncio.create_task(runtime.relay.run(), name="outbox-relay"))
        if subscribers is not None:
            subscribers(runtime)
            runtime.tasks.append(asyncio.create_task(_start_broker(runtime.broker), name="broker"))
        if on_startup is not None:
            await on_startup(runtime)
        log.info("service started", port=settings.http_port)
        try:
            yield
        finally:
            if runtime.relay is not None:
                runtime.relay.stop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(runtime.broker.stop(), timeout=10)
            for task in runtime.tasks:
                task.cancel()
            await asyncio.gather(*runtime.tasks, return_exceptions=True)
            await runtime.redis.aclose()
            await engine.dispose()

    def checks(app: FastAPI) -> dict[str, Callable[[], Awaitable[Any]]]:
        runtime: ServiceRuntime = app.state.runtime
        return {
            "postgres": lambda: _check_postgres(runtime.engine),
            "redis": lambda: asyncio.wait_for(runtime.redis.ping(), timeout=2),
            "kafka": lambda: _tcp_reachable(settings.kafka_bootstrap),
        }

    app = create_web_app(
        settings,
        title=title,
        description=description,
        lifespan=lifespan,
        readiness_checks=checks,
        routers=routers,
        root_routers=root_routers,
        innermost=lambda app: app.add_middleware(
            IdempotencyMiddleware, ttl=timedelta(hours=settings.idempotency_ttl_hours)
        ),
    )
    return app


ReadinessChecks = Callable[[FastAPI], dict[str, Callable[[], Awaitable[Any]]]]


def create_web_app(
    settings: ServiceSettings,
    *,
    title: str,
    description: str,
    lifespan: Callable[[FastAPI], Any],
    readiness_checks: ReadinessChecks,
    routers: Sequence[APIRouter] = (),
    root_routers: Sequence[APIRouter] = (),
    innermost: Callable[[FastAPI], None] | None = None,
) -> FastAPI:
    """The HTTP conventions every process shares: problem+json errors, `/healthz`, `/readyz`
    over the given checks, `/metrics`, routers under /v1, the NUL guard and correlation ids
    (outermost). `innermost` adds middleware that runs inside those (for example
    idempotency, whose replayed answers still get a correlation id)."""
    app = FastAPI(title=title, description=description, version="0.1.0", lifespan=lifespan)
    install_problem_handlers(app)
    if innermost is not None:
        innermost(app)
    app.add_middleware(NulGuardMiddleware)
    app.add_middleware(CorrelationMiddleware, service=settings.service_name)

    @app.get("/healthz", tags=["operations"], summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": settings.service_name}

    @app.get(
        "/readyz",
        tags=["operations"],
        summary="Dependencies are reachable",
        responses={503: {"description": "A dependency is unreachable"}},
    )
    async def readyz() -> JSONResponse:
        results: dict[str, str] = {}
        for name, check in readiness_checks(app).items():
            try:
                await check()
                results[name] = "ok"
            except Exception as exc:
                results[name] = f"unreachable: {type(exc).__name__}"
        ready = all(value == "ok" for value in results.values())
        return JSONResponse(
            {"status": "ready" if ready else "not-ready", "checks": results},
            status_code=200 if ready else 503,
        )

    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
    )
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    for router in routers:
        app.include_router(router, prefix="/v1")
    for router in root_routers:
        app.include_router(router)
    return app


async def _check_postgres(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await asyncio.wait_for(connection.execute(sa.text("SELECT 1")), timeout=2)


async def _start_broker(broker: KafkaBroker) -> None:
    """Start subscribers, retrying while Kafka is not reachable yet."""
    delay = 0.5
    while True:
        try:
            await broker.start()
            return
        except Exception as exc:
            log.warning("kafka not reachable yet, retrying", error=repr(exc), retry_in_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10)


# How long a service keeps an idle HTTP connection open (uvicorn's default, made explicit).
# A client that pools connections to a service must retire idle ones sooner: a request
# sent on a connection just as the server closes it is reset, and the client cannot tell
# whether it was received (the ingest benchmark's pool saw 16 of 90,000).
HTTP_KEEP_ALIVE_S = 5
POOLED_CONNECTION_MAX_IDLE_S = HTTP_KEEP_ALIVE_S - 1


def run_service(
    settings: SettingsT, migrations_package: str, app_factory: Callable[[SettingsT], FastAPI]
) -> None:
    """The body of every service's console script: migrate, then serve."""
    configure_logging(settings.service_name, settings.log_level)
    log.info("migrating database", database=settings.effective_database_url.rsplit("/", 1)[-1])
    migrate(migrations_package, settings.effective_database_url)
    options: dict[str, Any] = {
        "host": settings.http_host,
        "port": settings.http_port,
        "log_config": None,
        "access_log": False,
        "timeout_graceful_shutdown": 10,
        "timeout_keep_alive": HTTP_KEEP_ALIVE_S,
    }
    if settings.http_workers == 1:
        app = app_factory(settings)
        tune_garbage_collector()
        uvicorn.run(app, **options)
        return
    # Worker processes build their own app, so uvicorn needs where the factory is, not the
    # app; each worker reads the same settings from the environment it inherits.
    os.environ[_WORKER_FACTORY] = f"{app_factory.__module__}:{app_factory.__qualname__}"
    os.environ[_WORKER_LOGGING] = f"{settings.service_name}:{settings.log_level}"
    uvicorn.run(
        f"{__name__}:{worker_app.__name__}",
        factory=True,
        workers=settings.http_workers,
        **options,
    )


_WORKER_FACTORY = "CADRE_WORKER_APP_FACTORY"
_WORKER_LOGGING = "CADRE_WORKER_LOGGING"


def worker_app() -> FastAPI:
    """The app of one of several HTTP worker processes (see `run_service`)."""
    service_name, _, level = os.environ[_WORKER_LOGGING].partition(":")
    configure_logging(service_name, level)
    module_name, _, factory_name = os.environ[_WORKER_FACTORY].partition(":")
    factory: Callable[[], FastAPI] = getattr(importlib.import_module(module_name), factory_name)
    app = factory()
    tune_garbage_collector()
    return app


def request_sessions(request: Request) -> async_sessionmaker[AsyncSession]:
    """The service's session factory, for route handlers."""
    sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
    return sessions


def request_connection(request: Request) -> AbstractAsyncContextManager[DirectConnection]:
    """A connection from the service's pool for `fetch_one`, without an ORM session or
    SQLAlchemy's Connection, for the hottest routes: a session's own bookkeeping cost a
    check-in about 60 µs of CPU, the Connection about 40 more (measured). Each statement
    commits on its own (`DirectConnection`)."""
    runtime: ServiceRuntime = request.app.state.runtime
    return direct_connection(runtime.engine)


def request_appends(request: Request) -> AppendBatcher:
    """The service's `AppendBatcher`, for hot routes that start a new stream with each
    request and need nothing else written in the same transaction."""
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime.appends


def request_read_sessions(request: Request) -> async_sessionmaker[AsyncSession]:
    """The service's autocommit session factory (`read_session_factory`), for route
    handlers that read, or write in one statement."""
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime.reads
