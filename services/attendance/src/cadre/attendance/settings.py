from pydantic import BaseModel, Field
from pydantic_settings import SettingsConfigDict

from cadre.attendance.domain.leave import DEFAULT_CHAIN_RULES, ChainRule
from cadre.events.settings import ServiceSettings
from cadre.events.vocabulary import LeaderLevel


class ChainRuleSetting(BaseModel):
    """One row of a tenant's leave table: up to `max_workdays` (null: longer) → `levels`."""

    max_workdays: float | None = Field(default=None, gt=0)
    levels: list[LeaderLevel] = Field(min_length=1)


class AttendanceSettings(ServiceSettings):
    """Read from `CADRE_ATTENDANCE_*` variables; shared servers from `CADRE_*`."""

    model_config = SettingsConfigDict(
        env_prefix="CADRE_ATTENDANCE_", extra="ignore", populate_by_name=True
    )

    service_name: str = "attendance"
    http_port: int = 8002
    replica_group: str = "attendance.directory-replica"
    # Check-ins synced this long after they happened are marked late_sync...
    late_sync_after_minutes: int = 15
    # ...and refused when older than this (a tenant limit).
    late_sync_limit_hours: int = 72
    max_future_minutes: int = 5
    max_accuracy_m: float = 200.0
    max_speed_kmh: float = 250.0
    mismatch_history_days: int = 30
    # Day close: how far back a fresh start catches up, and how often it looks.
    day_close_catch_up_days: int = 31
    day_close_interval_s: float = 60.0
    # Each tenant's leave approval table, as JSON, for example
    # CADRE_ATTENDANCE_LEAVE_CHAIN_RULES='{"demo": [{"max_workdays": 2, "levels": ["county"]},
    #                                                {"levels": ["county", "city"]}]}'.
    # Tenants not listed use the default: up to 1 workday township; up to 3 township then
    # county; longer township, county, city.
    leave_chain_rules: dict[str, list[ChainRuleSetting]] = Field(default_factory=dict)

    def chain_rules(self, tenant: str) -> tuple[ChainRule, ...]:
        table = self.leave_chain_rules.get(tenant)
        if not table:
            return DEFAULT_CHAIN_RULES
        return tuple(ChainRule(r.max_workdays, tuple(r.levels)) for r in table)
