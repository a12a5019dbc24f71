from pydantic_settings import SettingsConfigDict

from cadre.events.settings import ServiceSettings


class ScoringSettings(ServiceSettings):
    """Read from `CADRE_SCORING_*` variables; shared servers from `CADRE_*`."""

    model_config = SettingsConfigDict(
        env_prefix="CADRE_SCORING_", extra="ignore", populate_by_name=True
    )

    service_name: str = "scoring"
    http_port: int = 8004
