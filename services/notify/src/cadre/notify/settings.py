from __future__ import annotations

from datetime import time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from cadre.events.settings import ServiceSettings
from cadre.events.topics import events_topic
from cadre.notify.adapters.senders import SmtpSettings
from cadre.notify.domain.reminders import ReminderRules
from cadre.notify.domain.webhooks import RetryPolicy


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


class NotifySettings(ServiceSettings):
    """Read from `CADRE_NOTIFY_*` variables; shared servers from `CADRE_*`."""

    model_config = SettingsConfigDict(
        env_prefix="CADRE_NOTIFY_", extra="ignore", populate_by_name=True
    )

    service_name: str = "notify"
    http_port: int = 8005
    consumer_group: str = "notify.inbound"
    consumer_max_records: int = Field(500, ge=1, le=5000)
    inbound_topics: list[str] = Field(
        default_factory=lambda: [
            events_topic(source) for source in ("directory", "attendance", "journal", "scoring")
        ]
    )
    # Tenant time zones for reminders, quiet hours and dates in messages, e.g.
    # CADRE_NOTIFY_TIMEZONES='{"demo": "Asia/Urumqi"}'; others use CADRE_DEFAULT_TIMEZONE.
    timezones: dict[str, str] = Field(default_factory=dict)
    # Events recorded longer ago than this (a consumer reset, a restore) tell nobody.
    mute_older_than_h: float = Field(24.0, gt=0)
    # Email: off unless an SMTP host is set.
    smtp_host: str | None = None
    smtp_port: int = Field(25, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_tls: bool = False
    mail_from: str = "cadre-notify@localhost"
    # Deliveries (email and webhooks).
    delivery_poll_s: float = Field(1.0, gt=0)
    delivery_batch: int = Field(50, ge=1, le=1000)
    delivery_concurrency: int = Field(8, ge=1, le=100)
    delivery_lease_s: float = Field(120.0, gt=0)
    webhook_timeout_s: float = Field(10.0, gt=0)
    retry_max_attempts: int = Field(8, ge=1, le=50)
    retry_base_s: float = Field(10.0, gt=0)
    retry_cap_s: float = Field(3600.0, gt=0)
    # Reminders, in each tenant's local time.
    reminder_interval_s: float = Field(60.0, gt=0)
    journal_reminder_at: time = time(20, 0)
    task_reminder_at: time = time(9, 0)
    approval_reminder_after_h: float = Field(24.0, gt=0)
    # Live stream: a comment line this often keeps proxies from closing an idle stream.
    stream_keepalive_s: float = Field(15.0, gt=0)

    def zone_of(self, tenant: str) -> ZoneInfo:
        return _zone(self.timezones.get(tenant, self.default_timezone))

    def smtp(self) -> SmtpSettings | None:
        if not self.smtp_host:
            return None
        return SmtpSettings(
            host=self.smtp_host,
            port=self.smtp_port,
            sender=self.mail_from,
            username=self.smtp_username,
            password=self.smtp_password,
            starttls=self.smtp_starttls,
            use_tls=self.smtp_tls,
        )

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            max_attempts=self.retry_max_attempts,
            base=timedelta(seconds=self.retry_base_s),
            cap=timedelta(seconds=self.retry_cap_s),
        )

    def reminder_rules(self) -> ReminderRules:
        return ReminderRules(
            journal_at=self.journal_reminder_at,
            approval_after=timedelta(hours=self.approval_reminder_after_h),
            task_due_at=self.task_reminder_at,
        )
