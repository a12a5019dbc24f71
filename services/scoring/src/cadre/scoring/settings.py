import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from cadre.events.settings import ServiceSettings
from cadre.events.topics import ALL_EVENT_TOPICS


class ScoringSettings(ServiceSettings):
    """Read from `CADRE_SCORING_*` variables; shared servers from `CADRE_*`."""

    model_config = SettingsConfigDict(
        env_prefix="CADRE_SCORING_", extra="ignore", populate_by_name=True
    )

    service_name: str = "scoring"
    http_port: int = 8004
    # `<tenant>.toml` files; tenants without one use the packaged default ruleset.
    rulesets_dir: Path | None = None
    ruleset_reload_s: float = Field(5.0, gt=0)
    # Every generation consumes with its own group, `<prefix>.g<generation>`.
    group_prefix: str = "scoring"
    topics: list[str] = Field(default_factory=lambda: list(ALL_EVENT_TOPICS))
    max_records: int = Field(500, ge=1, le=10_000)
    # A replay reads from the start of the log, but bigger batches than this cost more CPU
    # a record, not less: a batch's records, envelopes and events all live until it is
    # applied, and past a few hundred they no longer fit the CPU's cache (measured side by
    # side: 12.0 µs a record at 250 and 500, 15-17 µs at 1,000, 14-16 µs at 5,000).
    replay_max_records: int = Field(500, ge=1, le=50_000)
    # Processes a replay splits its work across (by partition, then by cadre).
    replay_workers: int = Field(default_factory=lambda: min(os.cpu_count() or 1, 8), ge=1, le=64)
    pointer_poll_s: float = Field(2.0, gt=0)
    # Every light is re-evaluated this often, since trailing windows move with the clock.
    lights_interval_s: float = Field(300.0, gt=0)
    # The lights of units with new events are re-evaluated at most this often: under a
    # steady stream every unit is always dirty, and each pass costs a read of their history.
    lights_changed_interval_s: float = Field(10.0, gt=0)
    publish_rankings: bool = True
    ranking_ttl_s: int = Field(3600, ge=1)
    # A fixed "today" (YYYY-MM-DD) for demos and tests of the clock-driven rules.
    today: str | None = None
