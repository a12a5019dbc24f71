from pydantic_settings import SettingsConfigDict

from cadre.events.settings import ServiceSettings


class ScoringSettings(ServiceSettings):
    """Environment variables: `CADRE_SCORING_*` for this service, `CADRE_*` for shared servers."""

    model_config = SettingsConfigDict(env_prefix="CADRE_SCORING_", extra="ignore", populate_by_name=True)

    service_name: str = "scoring"
    http_port: int = 8004
