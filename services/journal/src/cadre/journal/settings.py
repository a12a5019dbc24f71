from pydantic_settings import SettingsConfigDict

from cadre.events.settings import ServiceSettings


class JournalSettings(ServiceSettings):
    """Read from `CADRE_JOURNAL_*` variables; shared servers from `CADRE_*`."""

    model_config = SettingsConfigDict(
        env_prefix="CADRE_JOURNAL_", extra="ignore", populate_by_name=True
    )

    service_name: str = "journal"
    http_port: int = 8003
