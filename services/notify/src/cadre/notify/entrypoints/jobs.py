"""The notify process's background loops: sending what is due, and the reminder clock."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cadre.events.logging import get_logger
from cadre.events.periodic import repeat
from cadre.notify.adapters.deliveries import deliver_due
from cadre.notify.adapters.inbound import RoutingConfig
from cadre.notify.adapters.schedule import remind, send_digests
from cadre.notify.adapters.senders import Sender
from cadre.notify.settings import NotifySettings

log = get_logger(__name__)
Clock = Callable[[], datetime]


def wall_clock() -> datetime:
    return datetime.now(UTC)


def routing_config(settings: NotifySettings) -> RoutingConfig:
    return RoutingConfig(
        zone_of=settings.zone_of,
        mute_older_than=timedelta(hours=settings.mute_older_than_h),
        email_enabled=settings.smtp() is not None,
    )


async def run_deliveries(
    sessions: async_sessionmaker[AsyncSession],
    senders: Mapping[str, Sender],
    settings: NotifySettings,
    clock: Clock = wall_clock,
) -> None:
    policy = settings.retry_policy()

    async def deliver() -> bool:
        counts = await deliver_due(
            sessions,
            senders,
            policy,
            now=clock(),
            limit=settings.delivery_batch,
            lease=timedelta(seconds=settings.delivery_lease_s),
            concurrency=settings.delivery_concurrency,
        )
        if counts:
            log.info("deliveries", **counts)
        return sum(counts.values()) >= settings.delivery_batch  # more may be waiting

    await repeat("deliveries", settings.delivery_poll_s, deliver)


async def run_reminders(
    sessions: async_sessionmaker[AsyncSession], settings: NotifySettings, clock: Clock = wall_clock
) -> None:
    config, rules = routing_config(settings), settings.reminder_rules()

    async def tick() -> bool:
        now = clock()
        reminded = await remind(sessions, now, config, rules)
        digests = await send_digests(sessions, now, config)
        if reminded or digests:
            log.info("reminders", reminders=reminded, digests=digests)
        return False

    await repeat("reminders", settings.reminder_interval_s, tick)
