from pydantic_settings import SettingsConfigDict

from cadre.events.settings import ServiceSettings


class AttendanceSettings(ServiceSettings):
    """Read from `CADRE_ATTENDANCE_*` variables; shared servers from `CADRE_*`."""

    model_config = SettingsConfigDict(
        env_prefix="CADRE_ATTENDANCE_", extra="ignore", populate_by_name=True
    )

    service_name: str = "attendance"
    http_port: int = 8002
    directory_url: str = "http://127.0.0.1:8001"
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
