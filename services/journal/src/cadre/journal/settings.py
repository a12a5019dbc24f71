from pydantic_settings import SettingsConfigDict

from cadre.events.settings import ServiceSettings


class JournalSettings(ServiceSettings):
    """Environment variables: `CADRE_JOURNAL_*` for this service, `CADRE_*` for shared servers."""

    model_config = SettingsConfigDict(env_prefix="CADRE_JOURNAL_", extra="ignore", populate_by_name=True)

    service_name: str = "journal"
    http_port: int = 8003
