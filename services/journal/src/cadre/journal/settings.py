from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from cadre.events.settings import ServiceSettings
from cadre.events.topics import events_topic
from cadre.events.vocabulary import LeaderLevel
from cadre.journal.domain.media import MediaKind, MiB, UploadPolicy
from cadre.journal.domain.rules import MAX_BACKDATE_DAYS


class JournalSettings(ServiceSettings):
    """Read from `CADRE_JOURNAL_*` variables; shared servers from `CADRE_*`."""

    model_config = SettingsConfigDict(
        env_prefix="CADRE_JOURNAL_", extra="ignore", populate_by_name=True
    )

    service_name: str = "journal"
    http_port: int = 8003
    consumer_group: str = "journal.inbound"
    # What the consumer reads: the directory's org tree and attendance's leave and day closes.
    inbound_topics: list[str] = Field(
        default_factory=lambda: [events_topic("directory"), events_topic("attendance")]
    )
    # Attachments: a local directory, or an S3-compatible bucket.
    blob_store: Literal["local", "s3"] = "local"
    blob_dir: Path = Path(".stack/journal-blobs")
    s3_endpoint_url: str | None = None
    s3_bucket: str = "cadre-journal"
    s3_prefix: str = "blobs/"
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    # Per-type upload limits in MiB, and files per request.
    max_image_mib: float = Field(10, gt=0)
    max_document_mib: float = Field(20, gt=0)
    max_audio_mib: float = Field(20, gt=0)
    max_video_mib: float = Field(100, gt=0)
    max_attachments: int = Field(9, ge=1, le=50)
    # Entries may be written this many days back (a phone syncing late) and edited this long.
    backdate_days: int = Field(1, ge=0, le=MAX_BACKDATE_DAYS)
    edit_days: int = Field(7, ge=0)
    # Which leader levels may like or dislike, per tenant (default: all three), e.g.
    # CADRE_JOURNAL_REACTION_LEVELS='{"demo": ["county", "city"]}'.
    reaction_levels: dict[str, list[LeaderLevel]] = Field(default_factory=dict)
    # Study items a cadre must complete each month, per tenant (default 2).
    study_required_per_month: dict[str, int] = Field(default_factory=dict)
    study_required_default: int = Field(2, ge=0)
    # Endorsements: a pair endorsing each other this often within the window is flagged.
    reciprocal_window_days: int = Field(56, ge=1)
    reciprocal_min_each_way: int = Field(2, ge=1)
    # How often the overdue sweep looks for tasks past their due time.
    overdue_interval_s: float = Field(30.0, gt=0)

    def upload_policy(self) -> UploadPolicy:
        return UploadPolicy(
            limits={
                MediaKind.IMAGE: int(self.max_image_mib * MiB),
                MediaKind.DOCUMENT: int(self.max_document_mib * MiB),
                MediaKind.AUDIO: int(self.max_audio_mib * MiB),
                MediaKind.VIDEO: int(self.max_video_mib * MiB),
            },
            max_files=self.max_attachments,
        )

    def levels_reacting(self, tenant: str) -> frozenset[LeaderLevel]:
        return frozenset(self.reaction_levels.get(tenant) or LeaderLevel)

    def study_required(self, tenant: str) -> int:
        return self.study_required_per_month.get(tenant, self.study_required_default)
