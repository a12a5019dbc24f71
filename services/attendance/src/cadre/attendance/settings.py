from pydantic_settings import SettingsConfigDict

from cadre.events.settings import ServiceSettings


class AttendanceSettings(ServiceSettings):
    """Read from `CADRE_ATTENDANCE_*` variables; shared servers from `CADRE_*`."""

    model_config = SettingsConfigDict(
        env_prefix="CADRE_ATTENDANCE_", extra="ignore", populate_by_name=True
    )

    service_name: str = "attendance"
    http_port: int = 8002
