"""A person's choices: language, email address, quiet hours, channels per kind, and an
optional daily digest instead of single emails. Pure."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from pydantic import BaseModel, ConfigDict, EmailStr, Field, model_validator

from cadre.notify.domain.kinds import ALL_CHANNELS, Channel, Kind
from cadre.notify.domain.templates import Language


class QuietHours(BaseModel):
    """No email between `start` and `end` local time (may span midnight, 22:00-07:00)."""

    model_config = ConfigDict(extra="forbid")
    start: time
    end: time

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("start and end must differ")
        return self

    def contains(self, moment: time) -> bool:
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end


class Preferences(BaseModel):
    model_config = ConfigDict(extra="forbid")

    language: Language = "zh-CN"
    email: EmailStr | None = None
    quiet_hours: QuietHours | None = None
    # Channels per kind; a kind not listed goes everywhere. The inbox is always kept.
    channels: dict[Kind, list[Channel]] = Field(default_factory=dict)
    digest: bool = Field(False, description="one email a day instead of single emails")
    digest_at: time = time(18, 0)

    def channels_for(self, kind: Kind) -> frozenset[Channel]:
        chosen = self.channels.get(kind)
        found = ALL_CHANNELS if chosen is None else frozenset(chosen)
        if self.email is None:
            found -= {Channel.EMAIL}
        return found | {Channel.INBOX}


def release_time(local_now: datetime, quiet: QuietHours | None) -> datetime:
    """When something arising at `local_now` may be sent: now, or the end of quiet hours."""
    if quiet is None or not quiet.contains(local_now.time()):
        return local_now
    end = datetime.combine(local_now.date(), quiet.end, local_now.tzinfo)
    if end <= local_now:
        end += timedelta(days=1)
    return end
