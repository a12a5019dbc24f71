"""The outbox relay: publishes outbox rows to Kafka at least once, in order per key.

One relay per database is active at a time (a PostgreSQL advisory lock elects it), which
keeps the per-key order of the outbox. It wakes on LISTEN/NOTIFY, polls as a fallback, and
retries with capped exponential backoff through broker and database outages without ever
dropping a row: a row is marked published only after Kafka acknowledged it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from cadre.events.backoff import Backoff
from cadre.events.db import asyncpg_dsn
from cadre.events.logging import get_logger
from cadre.events.metrics import (
    OUTBOX_BACKLOG,
    OUTBOX_PUBLISH_FAILURES,
    OUTBOX_PUBLISHED,
)
from cadre.events.tables import OUTBOX_CHANNEL, RELAY_ASLEEP_LOCK_KEY

log = get_logger(__name__)

_RELAY_LOCK_KEY = 0x0CAD_0E01  # one advisory lock per database: one active relay
_MIN_POLL_S = 0.005  # how often, at least, a relay waiting to sleep looks again
# Plan each statement for its arguments: a generic plan made while the outbox was small
# (a fresh database) kept scanning the whole table for `id = ANY(...)` as it grew.
_RELAY_SERVER_SETTINGS = {"plan_cache_mode": "force_custom_plan"}


def make_producer(bootstrap: str, **overrides: Any) -> AIOKafkaProducer:
    """The producer settings the relay relies on: idempotent, all replicas ack, no reordering."""
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "enable_idempotence": True,
        "acks": "all",
        "linger_ms": 5,
        "max_batch_size": 256 * 1024,
        "request_timeout_ms": 10_000,
        "retry_backoff_ms": 200,
        "compression_type": None,
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


class OutboxRelay:
    def __init__(
        self,
        *,
        service: str,
        database_url: str,
        kafka_bootstrap: str,
        batch_size: int = 500,
        poll_interval_s: float = 1.0,
        linger_s: float = 0.02,
        send_timeout_s: float = 15.0,
        keep_published_for: timedelta = timedelta(days=7),
        prune_interval_s: float = 600.0,
        producer_factory: Callable[[], AIOKafkaProducer] | None = None,
    ) -> None:
        self.service = service
        self._dsn = asyncpg_dsn(database_url)
        self._batch_size = batch_size
        self._poll_interval_s = poll_interval_s
        self._linger_s = linger_s
        self._send_timeout_s = send_timeout_s
        self._producer_factory = producer_factory or (lambda: make_producer(kafka_bootstrap))
        self._producer: AIOKafkaProducer | None = None
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self.published_total = 0
        self._keep_published_for = keep_published_for
        self._prune_interval_s = prune_interval_s
        self._next_prune_at = 0.0
        self._next_backlog_count_at = 0.0

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        """Run until `stop()`, surviving database and broker outages."""
        backoff = Backoff()
        while not self._stopping.is_set():
            connection: asyncpg.Connection | None = None
            try:
                connection = await asyncpg.connect(
                    self._dsn, timeout=10, server_settings=_RELAY_SERVER_SETTINGS
                )
                if not await self._become_leader(connection):
                    continue
                log.info("outbox relay active", service=self.service)
                backoff.reset()
                await self._publish_loop(connection, backoff)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                delay = backoff.next()
                log.warning(
                    "outbox relay lost the database, retrying", error=repr(exc), retry_in_s=delay
                )
                await self._sleep(delay)
            except Exception as exc:
                # Anything else (asyncpg's InternalClientError after a server restart, seen
                # in the fault test) must not end the relay: drop the connection, start over.
                delay = backoff.next()
                log.error("outbox relay failed, restarting", error=repr(exc), retry_in_s=delay)
                await self._sleep(delay)
            finally:
                if connection is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(connection.close(), timeout=2)
        await self._close_producer()

    async def _become_leader(self, connection: asyncpg.Connection) -> bool:
        while not self._stopping.is_set():
            if await connection.fetchval("SELECT pg_try_advisory_lock($1)", _RELAY_LOCK_KEY):
                return True
            await self._sleep(self._poll_interval_s)
        return False

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    async def _publish_loop(self, connection: asyncpg.Connection, db_backoff: Backoff) -> None:
        """Idle, the relay LISTENs and wakes on the appends' NOTIFY. Busy (rows were waiting
        again after a linger), it stops listening and polls every `linger_s`: each commit's
        notification then cost PostgreSQL a signal and this process a message for nothing,
        and a batch gathered over a linger is one Kafka request and two statements where
        waking per commit made many small ones (seen in the ingest benchmark). Appends
        notify only while it sleeps (`RELAY_ASLEEP_LOCK_KEY`), so it takes that lock before
        it listens, and gets it only once every append that skipped its notification has
        committed."""
        kafka_backoff = Backoff()
        listening = False
        lingered = False
        while not self._stopping.is_set():
            self._wake.clear()
            rows = await connection.fetch(
                "SELECT id, topic, key, value, headers FROM outbox"
                " WHERE published_at IS NULL ORDER BY id LIMIT $1",
                self._batch_size,
            )
            await self._report_backlog(connection, len(rows))
            await self._prune_if_due(connection)
            if not rows:
                lingered = False
                if not listening:
                    if not await connection.fetchval(
                        "SELECT pg_try_advisory_lock($1)", RELAY_ASLEEP_LOCK_KEY
                    ):
                        await self._sleep(max(self._linger_s, _MIN_POLL_S))  # one is in flight
                        continue
                    # Listen first, then look once more: a row committed before LISTEN took
                    # effect sent its notification to nobody.
                    await connection.add_listener(OUTBOX_CHANNEL, self._on_notify)
                    listening = True
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self._poll_interval_s)
                continue
            if listening and lingered:
                await connection.remove_listener(OUTBOX_CHANNEL, self._on_notify)
                await connection.execute("SELECT pg_advisory_unlock($1)", RELAY_ASLEEP_LOCK_KEY)
                listening = False
            try:
                await self._publish(rows)
            except Exception as exc:  # any broker trouble: keep the rows, back off, retry
                OUTBOX_PUBLISH_FAILURES.labels(self.service).inc()
                await connection.execute(
                    "UPDATE outbox SET attempts = attempts + 1 WHERE id = $1", rows[0]["id"]
                )
                delay = kafka_backoff.next()
                log.warning(
                    "outbox publish failed, will retry",
                    error=repr(exc),
                    rows=len(rows),
                    retry_in_s=delay,
                )
                await self._close_producer()
                await self._sleep(delay)
                continue
            kafka_backoff.reset()
            db_backoff.reset()
            await connection.execute(
                "UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])",
                [row["id"] for row in rows],
            )
            self.published_total += len(rows)
            OUTBOX_PUBLISHED.labels(self.service).inc(len(rows))
            lingered = len(rows) < self._batch_size  # a full batch: more are waiting now
            if lingered:
                await self._sleep(self._linger_s)

    async def _publish(self, rows: list[asyncpg.Record]) -> None:
        producer = await self._ensure_producer()
        # One deadline for the batch. `wait_for` around each send made a task per row (Python
        # 3.11), so every row waited a full turn of the event loop: in a busy API process
        # the relay fell 4,000 rows behind, then caught up in bursts (seen in the ingest
        # benchmark).
        async with asyncio.timeout(self._send_timeout_s * 2):
            deliveries = []
            for row in rows:
                headers = [(name, value.encode()) for name, value in json.loads(row["headers"])]
                deliveries.append(
                    await producer.send(
                        row["topic"], value=row["value"], key=row["key"], headers=headers
                    )
                )
            await asyncio.gather(*deliveries)

    async def _report_backlog(self, connection: asyncpg.Connection, fetched: int) -> None:
        if fetched < self._batch_size:
            OUTBOX_BACKLOG.labels(self.service).set(fetched)  # everything pending was fetched
            return
        now = time.monotonic()
        if now >= self._next_backlog_count_at:  # counting a long backlog is not free
            self._next_backlog_count_at = now + 1.0
            backlog = await connection.fetchval(
                "SELECT count(*) FROM outbox WHERE published_at IS NULL"
            )
            OUTBOX_BACKLOG.labels(self.service).set(backlog)

    async def _prune_if_due(self, connection: asyncpg.Connection) -> None:
        now = time.monotonic()
        if now >= self._next_prune_at:
            self._next_prune_at = now + self._prune_interval_s
            await self.prune(connection)

    async def prune(self, connection: asyncpg.Connection) -> int:
        """Delete rows published longer ago than `keep_published_for`; returns how many.

        The event store keeps every event, so a pruned outbox row is never the only copy."""
        status = await connection.execute(
            "DELETE FROM outbox WHERE published_at < now() - $1::interval",
            self._keep_published_for,
        )
        return int(status.split()[-1])

    async def _ensure_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = self._producer_factory()
            try:
                await asyncio.wait_for(producer.start(), timeout=self._send_timeout_s)
            except BaseException:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(producer.stop(), timeout=2)
                raise
            self._producer = producer
        return self._producer

    async def _close_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), timeout=5)
