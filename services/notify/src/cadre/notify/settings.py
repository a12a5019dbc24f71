from pydantic_settings import SettingsConfigDict

from cadre.events.settings import ServiceSettings


class NotifySettings(ServiceSettings):
    """Read from `CADRE_NOTIFY_*` variables; shared servers from `CADRE_*`."""

    model_config = SettingsConfigDict(
        env_prefix="CADRE_NOTIFY_", extra="ignore", populate_by_name=True
    )

    service_name: str = "notify"
    http_port: int = 8005
