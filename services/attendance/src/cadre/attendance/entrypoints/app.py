import asyncio

from fastapi import FastAPI

from cadre.attendance import __doc__ as service_doc
from cadre.attendance.adapters.replica import apply_directory_event
from cadre.attendance.entrypoints import checkins, leaves, reports
from cadre.attendance.entrypoints.day_close_job import run_day_close
from cadre.attendance.settings import AttendanceSettings
from cadre.events.consumer import IdempotentConsumer
from cadre.events.faststream_adapter import broker_dead_letter, subscribe_idempotent
from cadre.events.service import ServiceRuntime, create_service_app
from cadre.events.topics import events_topic


def create_app(settings: AttendanceSettings | None = None) -> FastAPI:
    settings = settings or AttendanceSettings()

    def subscribe(runtime: ServiceRuntime) -> None:
        consumer = IdempotentConsumer(
            name=settings.replica_group,
            sessions=runtime.sessions,
            apply=apply_directory_event,
            dead_letter=broker_dead_letter(runtime.broker),
            max_attempts=settings.consumer_max_attempts,
        )
        subscribe_idempotent(
            runtime.broker, consumer, events_topic("directory"), group_id=settings.replica_group
        )

    async def start_day_close(runtime: ServiceRuntime) -> None:
        runtime.tasks.append(
            asyncio.create_task(run_day_close(runtime.sessions, settings), name="day-close")
        )

    return create_service_app(
        settings,
        title="cadre attendance",
        description=service_doc or "",
        routers=[checkins.router, leaves.router, reports.router],
        subscribers=subscribe,
        on_startup=start_day_close,
    )
