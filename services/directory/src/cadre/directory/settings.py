from pydantic_settings import SettingsConfigDict

from cadre.events.settings import ServiceSettings


class DirectorySettings(ServiceSettings):
    """Environment variables: `CADRE_DIRECTORY_*` for this service, `CADRE_*` for shared servers."""

    model_config = SettingsConfigDict(env_prefix="CADRE_DIRECTORY_", extra="ignore", populate_by_name=True)

    service_name: str = "directory"
    http_port: int = 8001
