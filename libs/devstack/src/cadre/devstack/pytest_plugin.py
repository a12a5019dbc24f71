"""pytest fixtures for tests against the real servers.

The servers are started once per test session (or a running stack is reused) and only the
ones this session started are stopped at the end. Each test gets its own databases and
topics, so tests never see each other's data.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from cadre.devstack.infra import (
    EVENT_TOPIC_PARTITIONS,
    Infra,
    create_databases,
    create_topics,
    drop_database,
)
from cadre.devstack.testing import Projection
from cadre.events.db import create_engine, session_factory
from cadre.events.tables import SPINE_METADATA


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    servers = Infra()
    servers.start(report=lambda line: print(f"[stack] {line}"))
    os.environ.setdefault("CADRE_KAFKA_BOOTSTRAP", servers.kafka_bootstrap)
    yield servers
    servers.stop(report=lambda line: print(f"[stack] {line}"))


@pytest.fixture(scope="session")
def kafka_bootstrap(infra: Infra) -> str:
    return infra.kafka_bootstrap


DatabaseFactory = Callable[[str], Awaitable[str]]


@pytest_asyncio.fixture
async def make_database(infra: Infra) -> AsyncIterator[DatabaseFactory]:
    """Creates uniquely named empty databases; drops them after the test."""
    admin = infra.pg_url("postgres", "postgresql")
    created: list[str] = []

    async def make(prefix: str = "test") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        await create_databases(admin, [name])
        created.append(name)
        return infra.pg_url(name)

    yield make
    for name in created:
        await drop_database(admin, name)


@pytest_asyncio.fixture
async def spine_db(make_database: DatabaseFactory) -> AsyncIterator[tuple[str, AsyncEngine]]:
    """A fresh database holding the spine tables; yields its URL and an engine."""
    url = await make_database("spine")
    engine = create_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(SPINE_METADATA.create_all)
    yield url, engine
    await engine.dispose()


@pytest.fixture
def spine_sessions(spine_db: tuple[str, AsyncEngine]) -> async_sessionmaker[AsyncSession]:
    return session_factory(spine_db[1])


TopicFactory = Callable[..., Awaitable[str]]


@pytest_asyncio.fixture
async def make_topic(kafka_bootstrap: str) -> TopicFactory:
    """Creates a uniquely named topic (and its DLQ) for one test."""

    async def make(prefix: str = "test", partitions: int = EVENT_TOPIC_PARTITIONS) -> str:
        name = f"{prefix}.{uuid.uuid4().hex[:10]}.v1"
        await create_topics(kafka_bootstrap, [name, name + ".dlq"], partitions=partitions)
        return name

    return make


@pytest_asyncio.fixture
async def projection(spine_db: tuple[str, AsyncEngine]) -> Projection:
    """A test-owned projection table in the spine database, counting applies per event."""
    return await Projection(spine_db[1]).create()
