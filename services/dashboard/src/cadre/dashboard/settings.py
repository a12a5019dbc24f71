from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from cadre.events.settings import ServiceSettings


class DashboardSettings(ServiceSettings):
    """Read from `CADRE_DASHBOARD_*` variables. The dashboard owns no database: it reads the
    other services' public APIs at these addresses."""

    model_config = SettingsConfigDict(
        env_prefix="CADRE_DASHBOARD_", extra="ignore", populate_by_name=True
    )

    service_name: str = "dashboard"
    http_port: int = 8000
    relay_enabled: bool = False
    attendance_url: str = "http://127.0.0.1:8002"
    journal_url: str = "http://127.0.0.1:8003"
    scoring_url: str = "http://127.0.0.1:8004"
    notify_url: str = "http://127.0.0.1:8005"
    # How long one upstream call may take before its panel shows "unavailable".
    upstream_timeout_s: float = Field(5.0, gt=0, le=120)
    # Tenant time zones for dates on the page, e.g. CADRE_DASHBOARD_TIMEZONES='{"demo":
    # "Asia/Urumqi"}'; others use CADRE_DEFAULT_TIMEZONE.
    timezones: dict[str, str] = Field(default_factory=dict)
    # Set when served over HTTPS, so the session cookie is never sent in clear.
    secure_cookies: bool = False
    # The largest unit a ranking export or sorted ranking reads (pages of 500 upstream).
    max_unit_members: int = Field(20_000, ge=1)

    def zone_of(self, tenant: str) -> ZoneInfo:
        return ZoneInfo(self.timezones.get(tenant, self.default_timezone))

    def today(self, tenant: str) -> date:
        return datetime.now(self.zone_of(tenant)).date()

    def upstreams(self) -> dict[str, str]:
        return {
            "directory": self.directory_url,
            "attendance": self.attendance_url,
            "journal": self.journal_url,
            "scoring": self.scoring_url,
            "notify": self.notify_url,
        }
