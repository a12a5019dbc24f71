from pydantic_settings import SettingsConfigDict

from cadre.events.settings import ServiceSettings


class DirectorySettings(ServiceSettings):
    """Read from `CADRE_DIRECTORY_*` variables; shared servers from `CADRE_*`."""

    model_config = SettingsConfigDict(
        env_prefix="CADRE_DIRECTORY_", extra="ignore", populate_by_name=True
    )

    service_name: str = "directory"
    http_port: int = 8001
    # Load (idempotently) the demo tenant with its logins at start; `make up` turns it on.
    load_demo: bool = False
    # The tenant the demo goes into (tests load it into a tenant of their own).
    demo_tenant: str = "demo"
