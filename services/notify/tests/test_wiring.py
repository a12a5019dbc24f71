"""The notify service is wired by the shared conventions (settings, operational routes)."""

import pytest

from cadre.devstack.testing import check_service_wiring
from cadre.notify.entrypoints.app import create_app
from cadre.notify.settings import NotifySettings


def test_settings_and_operational_routes(monkeypatch: pytest.MonkeyPatch) -> None:
    check_service_wiring(create_app, NotifySettings, "notify", 8005, monkeypatch)
