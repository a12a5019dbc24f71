"""Test support for suites that run against the real servers: a projection table that
counts how often each event was applied (so a double apply is visible), polling helpers,
and a small local HTTP server for testing HTTP clients."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from cadre.events.auth import JwksVerifier, Principal, key_id, public_jwk, sign_token
from cadre.events.catalogue import AnyEvent
from cadre.events.consumer import InboundRecord, KafkaRecordLike
from cadre.events.settings import ServiceSettings
from cadre.events.vocabulary import LeaderLevel, Role
from cadre.events.wire import encode, header_map

PROJECTION_DDL = """
CREATE TABLE IF NOT EXISTS test_projection (
    event_id uuid PRIMARY KEY,
    event_type text NOT NULL,
    tenant text NOT NULL,
    subject text NOT NULL,
    envelope jsonb NOT NULL,
    headers jsonb NOT NULL,
    applied_count int NOT NULL
)
"""


@dataclass
class Projection:
    engine: AsyncEngine
    fail_subjects: frozenset[str] = frozenset()
    attempts_on_failures: int = 0

    async def apply(self, session: AsyncSession, event: AnyEvent, record: KafkaRecordLike) -> None:
        if event.subject in self.fail_subjects:
            self.attempts_on_failures += 1
            raise ValueError(f"cannot project {event.subject}")
        await session.execute(
            sa.text(
                "INSERT INTO test_projection VALUES (:id, :type, :tenant, :subject, "
                "CAST(:envelope AS jsonb), CAST(:headers AS jsonb), 1) "
                "ON CONFLICT (event_id) DO UPDATE"
                " SET applied_count = test_projection.applied_count + 1"
            ),
            {
                "id": event.id,
                "type": event.type,
                "tenant": event.tenant,
                "subject": event.subject,
                "envelope": event.model_dump_json(),
                "headers": json.dumps(header_map(record.headers)),
            },
        )

    async def count(self, tenant: str) -> int:
        async with self.engine.connect() as connection:
            result = await connection.execute(
                sa.text("SELECT count(*) FROM test_projection WHERE tenant = :t"), {"t": tenant}
            )
            return int(result.scalar_one())

    async def applied_counts(self, tenant: str) -> dict[uuid.UUID, int]:
        async with self.engine.connect() as connection:
            result = await connection.execute(
                sa.text("SELECT event_id, applied_count FROM test_projection WHERE tenant = :t"),
                {"t": tenant},
            )
            return {row[0]: row[1] for row in result}

    async def rows(self, tenant: str) -> list[tuple[dict[str, Any], dict[str, str]]]:
        async with self.engine.connect() as connection:
            result = await connection.execute(
                sa.text("SELECT envelope, headers FROM test_projection WHERE tenant = :t"),
                {"t": tenant},
            )
            return [(row[0], row[1]) for row in result]

    async def create(self) -> Projection:
        async with self.engine.begin() as connection:
            await connection.execute(sa.text(PROJECTION_DDL))
        return self


def unique_tenant() -> str:
    return "t" + uuid.uuid4().hex[:12]


async def eventually(
    check: Callable[[], Awaitable[bool]],
    timeout_s: float = 30.0,
    interval_s: float = 0.2,
    message: str = "condition",
) -> None:
    """Poll `check` until it is true; fail with `message` after `timeout_s`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {message}")
        await asyncio.sleep(interval_s)


def wait_until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    """`eventually` for synchronous tests: poll `check` every half second."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.5)


class LocalHttpServer(ThreadingHTTPServer):
    """A threaded HTTP server on a free port of 127.0.0.1 (`local_http_server`), counting
    the connections it accepted, for tests of HTTP clients."""

    connections = 0

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)  # a client that left is no error


class JsonHandler(BaseHTTPRequestHandler):
    """A `LocalHttpServer`'s handler: keeps connections alive (HTTP/1.1), answers JSON and
    logs nothing."""

    protocol_version = "HTTP/1.1"
    server: LocalHttpServer

    def setup(self) -> None:
        super().setup()
        self.server.connections += 1

    def answer(self, status: int, document: Any, headers: Mapping[str, str] | None = None) -> None:
        data = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_: Any) -> None:
        pass


ServerT = TypeVar("ServerT", bound=LocalHttpServer)


@contextmanager
def local_http_server(server_class: type[ServerT], handler: type[JsonHandler]) -> Iterator[ServerT]:
    """A `server_class` (a `LocalHttpServer`) serving `handler` on a free local port, in a
    background thread, until the block ends."""
    server = server_class(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


async def no_dead_letters(
    topic: str, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]
) -> None:
    """A dead-letter publisher for tests in which nothing may be dead-lettered."""
    raise AssertionError(f"nothing should be dead-lettered, but a record went to {topic}")


async def read_topic(
    bootstrap: str,
    topic: str,
    at_least: int = 0,
    timeout_s: float = 60.0,
    until: Callable[[list[InboundRecord]], bool] | None = None,
) -> list[InboundRecord]:
    """Every record of `topic` from the beginning (duplicates kept), read until `until(records)`
    holds or, without `until`, until `at_least` distinct records arrived and a poll brought
    nothing new. Fails after `timeout_s`."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    records: list[InboundRecord] = []
    positions: set[str] = set()
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=2000)
            fresh = [InboundRecord.from_consumer_record(r) for rs in batch.values() for r in rs]
            records.extend(fresh)
            positions.update(r.position for r in fresh)
            if until(records) if until else len(positions) >= at_least and not fresh:
                break
        else:
            raise AssertionError(f"reading {topic} timed out after {timeout_s}s")
    finally:
        await consumer.stop()
    return records


def check_service_wiring(
    app_factory: Callable[[], FastAPI],
    settings_class: type[ServiceSettings],
    name: str,
    default_port: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What every service promises before it has any domain API: its settings honour the
    `CADRE_<SERVICE>_*` variables, and its app has the shared operational routes."""
    prefix = f"CADRE_{name.upper()}_"
    for variable in ("HTTP_PORT", "DATABASE_URL"):
        monkeypatch.delenv(prefix + variable, raising=False)
    defaults = settings_class()
    assert defaults.service_name == name
    assert defaults.http_port == default_port
    assert defaults.effective_database_url.endswith(f"/cadre_{name}")

    monkeypatch.setenv(prefix + "HTTP_PORT", "18999")
    monkeypatch.setenv(prefix + "DATABASE_URL", "postgresql+asyncpg://u@h:1/elsewhere")
    monkeypatch.setenv("CADRE_KAFKA_BOOTSTRAP", "kafka.internal:9092")
    overridden = settings_class()
    assert overridden.http_port == 18999
    assert overridden.effective_database_url == "postgresql+asyncpg://u@h:1/elsewhere"
    assert overridden.kafka_bootstrap == "kafka.internal:9092"

    spec = app_factory().openapi()
    assert spec["info"]["title"] == f"cadre {name}"
    assert {"/healthz", "/readyz", "/metrics"} <= set(spec["paths"])


async def publish_events(
    bootstrap: str, events: Iterable[AnyEvent], topic_of: Callable[[AnyEvent], str]
) -> int:
    """Publish events the way the relay does (CloudEvents binary mode, keyed by subject)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
    await producer.start()
    count = 0
    try:
        for event in events:
            record = encode(event)
            await producer.send(
                topic_of(event), key=record.key, value=record.value, headers=record.headers
            )
            count += 1
        await producer.flush()
    finally:
        await producer.stop()
    return count


class TokenMint:
    """Mints real EdDSA bearer tokens and serves their JWKS, standing in for the directory
    in tests of the other services (set `app.state.verifier = mint.verifier()`)."""

    def __init__(self, tenant: str) -> None:
        self.tenant = tenant
        self.kid = key_id(tenant, 1)
        self._key = Ed25519PrivateKey.generate()

    def jwks(self) -> dict[str, Any]:
        """What the directory would serve at /.well-known/jwks.json."""
        return {"keys": [public_jwk(self._key, self.kid)]}

    def verifier(self) -> JwksVerifier:
        async def fetch(_: str) -> dict[str, Any]:
            return self.jwks()

        return JwksVerifier("test", fetch=fetch, min_refresh_s=0)

    def headers(
        self,
        sub: str,
        unit_path: str,
        *roles: Role,
        level: LeaderLevel | None = None,
    ) -> dict[str, str]:
        principal = Principal(sub, self.tenant, unit_path, frozenset(roles or (Role.CADRE,)), level)
        return {"Authorization": f"Bearer {sign_token(principal, self._key, self.kid)}"}
