"""The shared servers of the local stack: start what is not already running, then prepare
the per-service databases and the event topics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from cadre.devstack import ports
from cadre.devstack.kafka import KafkaServer, resolve_kafka_libs
from cadre.devstack.paths import stack_dir
from cadre.devstack.postgres import PG_USER, PostgresServer
from cadre.devstack.processes import StackError, port_open
from cadre.devstack.redis import RedisServer
from cadre.events.topics import ALL_DLQ_TOPICS, ALL_EVENT_TOPICS

SERVICES = ("directory", "attendance", "journal", "scoring", "notify")  # each has a database
# What `make up` runs: the services, then the dashboard, which reads their APIs.
PROCESSES = (*SERVICES, "dashboard")
EVENT_TOPIC_PARTITIONS = 6
# Replays read the whole log, so event topics never expire (DESIGN section 3).
REPLAY_RETENTION = {"retention.ms": "-1", "retention.bytes": "-1", "cleanup.policy": "delete"}
# The longest Unix-domain socket path Linux accepts (`sun_path` is 108 bytes with its NUL).
MAX_SOCKET_PATH = 107

Reporter = Callable[[str], None]


@dataclass
class Infra:
    """The three servers; those found already listening are reused and never stopped by us."""

    home: Path = field(default_factory=stack_dir)
    kafka: KafkaServer | None = None
    postgres: PostgresServer | None = None
    redis: RedisServer | None = None
    started: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.kafka = KafkaServer(
            self.home / "kafka", ports.kafka_port(), ports.kafka_controller_port()
        )
        self.postgres = PostgresServer(self.home / "postgres", ports.postgres_port())
        self.redis = RedisServer(self.home / "redis", ports.redis_port())

    @property
    def kafka_bootstrap(self) -> str:
        return f"127.0.0.1:{ports.kafka_port()}"

    def pg_url(self, database: str, driver: str = "postgresql+asyncpg") -> str:
        return f"{driver}://{PG_USER}@127.0.0.1:{ports.postgres_port()}/{database}"

    def pg_local_url(self, database: str, driver: str = "postgresql+asyncpg") -> str:
        """`pg_url` over the server's Unix-domain socket, for processes on this machine; the
        TCP `pg_url` when this stack's server has no socket there (a server found already
        running may keep its socket elsewhere) or its path is too long for a socket."""
        assert self.postgres is not None
        socket = self.postgres.socket_path
        if len(str(socket)) > MAX_SOCKET_PATH or not socket.exists():
            return self.pg_url(database, driver)
        host = quote(str(self.postgres.socket_directory), safe="/")
        return f"{driver}://{PG_USER}@/{database}?host={host}&port={self.postgres.port}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{ports.redis_port()}/0"

    def start(self, report: Reporter = print) -> None:
        servers = (("PostgreSQL", self.postgres), ("Redis", self.redis), ("Kafka", self.kafka))
        for name, server in servers:
            assert server is not None
            if port_open(server.port):
                report(f"{name}: reusing the server already listening on {server.port}")
                continue
            if server is self.kafka:
                resolve_kafka_libs(report)  # a one-off download on a fresh machine: say so
            began = time.monotonic()
            report(f"{name}: starting on port {server.port} (data in {server.home})")
            server.start()
            self.started.append(name)
            report(f"{name}: ready in {time.monotonic() - began:.1f}s")
        asyncio.run(self.prepare(report))

    async def prepare(self, report: Reporter = print) -> None:
        await create_databases(
            self.pg_url("postgres", "postgresql"), [f"cadre_{s}" for s in SERVICES]
        )
        created = await create_topics(self.kafka_bootstrap, [*ALL_EVENT_TOPICS, *ALL_DLQ_TOPICS])
        if created:
            report(f"Kafka: created topics {', '.join(created)} (infinite retention)")

    def stop(self, report: Reporter = print) -> None:
        """Stop only the servers this object started, in reverse order."""
        for name, server in (
            ("Kafka", self.kafka),
            ("Redis", self.redis),
            ("PostgreSQL", self.postgres),
        ):
            if name in self.started and server is not None:
                report(f"{name}: stopping")
                server.stop()
        self.started.clear()


async def create_databases(admin_dsn: str, names: Iterable[str]) -> list[str]:
    connection = await _connect_with_retry(admin_dsn)
    created: list[str] = []
    try:
        existing = {
            row["datname"] for row in await connection.fetch("SELECT datname FROM pg_database")
        }
        for name in names:
            if name not in existing:
                await connection.execute(f'CREATE DATABASE "{name}"')
                created.append(name)
    finally:
        await connection.close()
    return created


async def drop_database(admin_dsn: str, name: str) -> None:
    connection = await _connect_with_retry(admin_dsn)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


async def _connect_with_retry(dsn: str, timeout_s: float = 30.0) -> asyncpg.Connection:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return await asyncpg.connect(dsn, timeout=5)
        except (OSError, asyncpg.CannotConnectNowError) as exc:
            if time.monotonic() > deadline:
                raise StackError(f"PostgreSQL is not accepting connections: {exc}") from exc
            await asyncio.sleep(0.3)


async def create_topics(
    bootstrap: str,
    topics: Iterable[str],
    partitions: int = EVENT_TOPIC_PARTITIONS,
    timeout_s: float = 60.0,
) -> list[str]:
    """Create the missing topics with replay retention; returns the ones created."""
    deadline = time.monotonic() + timeout_s
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            missing = [t for t in topics if t not in existing]
            if missing:
                await admin.create_topics(
                    [
                        NewTopic(
                            name=t,
                            num_partitions=partitions,
                            replication_factor=1,
                            topic_configs=dict(REPLAY_RETENTION),
                        )
                        for t in missing
                    ]
                )
            return missing
        except Exception as exc:
            if time.monotonic() > deadline:
                raise StackError(f"could not create Kafka topics: {exc!r}") from exc
            await asyncio.sleep(0.5)
        finally:
            await admin.close()
