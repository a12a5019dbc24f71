"""Configuration conventions (pydantic-settings).

Shared infrastructure comes from `CADRE_*` variables (for example `CADRE_KAFKA_BOOTSTRAP`);
each service's own knobs come from `CADRE_<SERVICE>_*` (for example
`CADRE_ATTENDANCE_HTTP_PORT`). The defaults are the local stack's ports (DESIGN section 9).
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class InfraSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    kafka_bootstrap: str = Field("127.0.0.1:19092", validation_alias="CADRE_KAFKA_BOOTSTRAP")
    pg_host: str = Field("127.0.0.1", validation_alias="CADRE_PG_HOST")
    pg_port: int = Field(15432, validation_alias="CADRE_PG_PORT")
    pg_user: str = Field("cadre", validation_alias="CADRE_PG_USER")
    pg_password: str = Field("", validation_alias="CADRE_PG_PASSWORD")
    redis_url: str = Field("redis://127.0.0.1:16379/0", validation_alias="CADRE_REDIS_URL")
    log_level: str = Field("INFO", validation_alias="CADRE_LOG_LEVEL")
    default_timezone: str = Field("Asia/Shanghai", validation_alias="CADRE_DEFAULT_TIMEZONE")

    def url_for_database(self, database: str) -> str:
        auth = self.pg_user if not self.pg_password else f"{self.pg_user}:{self.pg_password}"
        return f"postgresql+asyncpg://{auth}@{self.pg_host}:{self.pg_port}/{database}"


class ServiceSettings(InfraSettings):
    """Base of each service's settings; subclasses set `env_prefix` and the defaults."""

    service_name: str = "service"
    http_host: str = "127.0.0.1"
    http_port: int = Field(8000, ge=1, le=65535)
    # More than one runs that many processes on the port (a busy API on a multi-core box);
    # the outbox relay stays single (an advisory lock elects one) and consumers share a group.
    http_workers: int = Field(1, ge=1, le=32)
    # Connections per process, held open: opening one per request under load costs more
    # than the request (profiled), so there is no overflow to open and close.
    database_pool_size: int = Field(20, ge=1, le=200)
    # Empty means the service's own database on the shared server: cadre_<service>.
    database_url: str = ""
    relay_enabled: bool = True
    relay_batch_size: int = Field(500, ge=1, le=10_000)
    relay_poll_interval_s: float = Field(1.0, gt=0, le=60)
    # While rows keep coming, the relay gathers them this long per batch instead of
    # waking on every commit's NOTIFY.
    relay_linger_s: float = Field(0.02, ge=0, le=1)
    # Published outbox rows are kept this long for inspection, then pruned.
    relay_keep_published_days: float = Field(7, ge=0)
    consumer_max_attempts: int = Field(3, ge=1, le=100)
    idempotency_ttl_hours: int = Field(24, ge=1)
    # Where the directory serves the token-signing keys (/.well-known/jwks.json).
    directory_url: str = "http://127.0.0.1:8001"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or self.url_for_database(f"cadre_{self.service_name}")
