"""The directory service is wired by the shared conventions (settings, operational routes)."""

import pytest

from cadre.devstack.testing import check_service_wiring
from cadre.directory.entrypoints.app import create_app
from cadre.directory.settings import DirectorySettings


def test_settings_and_operational_routes(monkeypatch: pytest.MonkeyPatch) -> None:
    check_service_wiring(create_app, DirectorySettings, "directory", 8001, monkeypatch)
