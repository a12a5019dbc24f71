"""What every attendance route needs: sessions, settings and the caller."""

from __future__ import annotations

from fastapi import Request

from cadre.attendance.settings import AttendanceSettings
from cadre.events.auth import CurrentPrincipal
from cadre.events.service import (
    request_appends,
    request_connection,
    request_read_sessions,
    request_sessions,
)

__all__ = [
    "CurrentPrincipal",
    "appends_of",
    "connection_of",
    "read_sessions_of",
    "sessions_of",
    "settings_of",
]

appends_of = request_appends
sessions_of = request_sessions
read_sessions_of = request_read_sessions
connection_of = request_connection


def settings_of(request: Request) -> AttendanceSettings:
    settings: AttendanceSettings = request.app.state.runtime.settings
    return settings
