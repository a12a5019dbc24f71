"""The journal service is wired by the shared conventions (settings, operational routes)."""

import pytest

from cadre.devstack.testing import check_service_wiring
from cadre.journal.entrypoints.app import create_app
from cadre.journal.settings import JournalSettings


def test_settings_and_operational_routes(monkeypatch: pytest.MonkeyPatch) -> None:
    check_service_wiring(create_app, JournalSettings, "journal", 8003, monkeypatch)
