from fastapi import FastAPI

from cadre.attendance import __doc__ as service_doc
from cadre.attendance.settings import AttendanceSettings
from cadre.events.service import create_service_app


def create_app(settings: AttendanceSettings | None = None) -> FastAPI:
    return create_service_app(
        settings or AttendanceSettings(),
        title="cadre attendance",
        description=service_doc or "",
    )
