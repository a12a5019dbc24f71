"""What every attendance route needs: sessions, settings and the caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from cadre.attendance.settings import AttendanceSettings
from cadre.events.auth import JwksVerifier, Principal, principal_dependency
from cadre.events.service import request_sessions

sessions_of = request_sessions


def settings_of(request: Request) -> AttendanceSettings:
    settings: AttendanceSettings = request.app.state.runtime.settings
    return settings


def verifier_of(request: Request) -> JwksVerifier:
    app = request.app
    if getattr(app.state, "verifier", None) is None:
        app.state.verifier = JwksVerifier(
            settings_of(request).directory_url + "/.well-known/jwks.json"
        )
    verifier: JwksVerifier = app.state.verifier
    return verifier


CurrentPrincipal = Annotated[
    Principal, Depends(principal_dependency(lambda r: verifier_of(r).verify))
]
