"""The scoring service is wired by the shared conventions (settings, operational routes)."""

import pytest

from cadre.devstack.testing import check_service_wiring
from cadre.scoring.entrypoints.app import create_app
from cadre.scoring.settings import ScoringSettings


def test_settings_and_operational_routes(monkeypatch: pytest.MonkeyPatch) -> None:
    check_service_wiring(create_app, ScoringSettings, "scoring", 8004, monkeypatch)
