"""The attendance service is wired by the shared conventions (settings, operational routes)."""

import pytest

from cadre.attendance.entrypoints.app import create_app
from cadre.attendance.settings import AttendanceSettings
from cadre.devstack.testing import check_service_wiring


def test_settings_and_operational_routes(monkeypatch: pytest.MonkeyPatch) -> None:
    check_service_wiring(create_app, AttendanceSettings, "attendance", 8002, monkeypatch)
