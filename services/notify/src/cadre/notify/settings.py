from pydantic_settings import SettingsConfigDict

from cadre.events.settings import ServiceSettings


class NotifySettings(ServiceSettings):
    """Environment variables: `CADRE_NOTIFY_*` for this service, `CADRE_*` for shared servers."""

    model_config = SettingsConfigDict(env_prefix="CADRE_NOTIFY_", extra="ignore", populate_by_name=True)

    service_name: str = "notify"
    http_port: int = 8005
