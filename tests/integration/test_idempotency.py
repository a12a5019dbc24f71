"""The Idempotency-Key middleware, backed by the real PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
import sqlalchemy as sa
from fastapi import APIRouter, FastAPI, Request
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from cadre.events.idempotency import IdempotencyMiddleware
from cadre.events.problems import install_problem_handlers
from cadre.events.samples import sample_event
from cadre.events.service import create_service_app
from cadre.events.settings import ServiceSettings
from cadre.events.store import append
from cadre.events.tables import event_store, idempotency_keys

pytestmark = [pytest.mark.integration]


class Missed(BaseModel):
    subject: str


@pytest_asyncio.fixture
async def client(
    spine_sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    install_problem_handlers(app)
    calls = {"n": 0}

    @app.post("/v1/missed", status_code=201)
    async def record_missed(body: Missed, request: Request) -> dict[str, str]:
        calls["n"] += 1
        event = sample_event("journal.journal_missed", subject=body.subject)
        async with spine_sessions() as session, session.begin():
            await append(session, f"missed-{event.id}", 0, [event])
        return {"event_id": str(event.id)}

    @app.post("/v1/explode")
    async def explode() -> None:
        calls["n"] += 1
        raise RuntimeError("boom")

    app.add_middleware(IdempotencyMiddleware, sessions=spine_sessions)
    app.state.calls = calls
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        yield http


async def _events(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return int(await session.scalar(sa.select(sa.func.count()).select_from(event_store)) or 0)


async def test_a_repeated_request_returns_the_first_answer_and_appends_nothing(
    client: httpx.AsyncClient, spine_sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = {"Idempotency-Key": "checkin-42"}
    first = await client.post("/v1/missed", json={"subject": "c-1"}, headers=headers)
    again = await client.post("/v1/missed", json={"subject": "c-1"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert await _events(spine_sessions) == 1


async def test_the_same_key_with_a_different_body_is_422(
    client: httpx.AsyncClient, spine_sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = {"Idempotency-Key": "k-1"}
    await client.post("/v1/missed", json={"subject": "c-1"}, headers=headers)
    reused = await client.post("/v1/missed", json={"subject": "c-2"}, headers=headers)
    assert reused.status_code == 422
    assert reused.headers["content-type"] == "application/problem+json"
    assert reused.json()["code"] == "idempotency-key-reused"
    assert await _events(spine_sessions) == 1


async def test_without_a_key_every_request_runs(
    client: httpx.AsyncClient, spine_sessions: async_sessionmaker[AsyncSession]
) -> None:
    await client.post("/v1/missed", json={"subject": "c-1"})
    await client.post("/v1/missed", json={"subject": "c-1"})
    assert await _events(spine_sessions) == 2


async def test_keys_are_scoped_to_the_caller(
    client: httpx.AsyncClient, spine_sessions: async_sessionmaker[AsyncSession]
) -> None:
    for token in ("alice", "bob"):
        response = await client.post(
            "/v1/missed",
            json={"subject": "c-1"},
            headers={"Idempotency-Key": "same", "Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 201
    assert await _events(spine_sessions) == 2


async def test_a_server_error_releases_the_key_so_the_client_can_retry(
    client: httpx.AsyncClient,
) -> None:
    headers = {"Idempotency-Key": "retry-me"}
    first = await client.post("/v1/explode", headers=headers)
    second = await client.post("/v1/explode", headers=headers)
    assert first.status_code == second.status_code == 500
    assert "idempotent-replayed" not in second.headers


async def test_an_empty_or_oversized_key_is_a_400(client: httpx.AsyncClient) -> None:
    for key in (" ", "x" * 300):
        response = await client.post(
            "/v1/missed", json={"subject": "c"}, headers={"Idempotency-Key": key}
        )
        assert response.status_code == 400
        assert response.json()["code"] == "bad-idempotency-key"


async def test_a_repeat_while_the_first_is_still_running_is_409(
    spine_sessions: async_sessionmaker[AsyncSession],
) -> None:
    release = asyncio.Event()
    app = FastAPI()
    install_problem_handlers(app)

    @app.post("/v1/slow", status_code=201)
    async def slow() -> dict[str, bool]:
        await release.wait()
        return {"done": True}

    app.add_middleware(IdempotencyMiddleware, sessions=spine_sessions)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        headers = {"Idempotency-Key": "slow-1"}
        first = asyncio.create_task(http.post("/v1/slow", headers=headers))
        await asyncio.sleep(0.3)  # the first request has claimed the key and is waiting
        concurrent = await http.post("/v1/slow", headers=headers)
        release.set()
        finished = await first
        replay = await http.post("/v1/slow", headers=headers)
    assert concurrent.status_code == 409
    assert concurrent.json()["code"] == "idempotency-key-in-progress"
    assert finished.status_code == 201
    assert replay.status_code == 201
    assert replay.headers["idempotent-replayed"] == "true"


async def test_services_built_by_the_shared_factory_honour_idempotency_keys(
    spine_db: tuple[str, AsyncEngine], kafka_bootstrap: str
) -> None:
    url, _ = spine_db
    router = APIRouter()
    calls: list[str] = []

    @router.post("/things", status_code=201)
    async def create_thing(body: Missed) -> dict[str, int]:
        calls.append(body.subject)
        return {"n": len(calls)}

    settings = ServiceSettings(
        service_name="probe", database_url=url, kafka_bootstrap=kafka_bootstrap, relay_enabled=False
    )
    app = create_service_app(settings, title="probe", description="", routers=[router])
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            headers = {"Idempotency-Key": "svc-1"}
            first = await http.post("/v1/things", json={"subject": "a"}, headers=headers)
            again = await http.post("/v1/things", json={"subject": "a"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == {"n": 1}
    assert again.headers["idempotent-replayed"] == "true"
    assert calls == ["a"]


async def test_a_claim_abandoned_by_a_crashed_process_expires_after_its_lease(
    client: httpx.AsyncClient, spine_sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = {"Idempotency-Key": "crashed"}
    async with spine_sessions() as session, session.begin():
        # What a process that died mid-request leaves behind: a claim with no answer.
        await session.execute(
            sa.insert(idempotency_keys).values(
                scope="x", key="crashed", request_hash="h", created_at=sa.func.now()
            )
        )
    first = await client.post("/v1/missed", json={"subject": "c-1"}, headers=headers)
    assert first.status_code == 201, "a claim in another scope does not block this one"

    await _set_key(spine_sessions, "crashed", timedelta(minutes=1), status_code=None)
    blocked = await client.post("/v1/missed", json={"subject": "c-1"}, headers=headers)
    assert blocked.status_code == 409, "within the lease the claim still blocks"

    await _set_key(spine_sessions, "crashed", timedelta(minutes=6))
    retried = await client.post("/v1/missed", json={"subject": "c-1"}, headers=headers)
    assert retried.status_code == 201
    assert "idempotent-replayed" not in retried.headers


async def test_an_answer_older_than_the_ttl_is_forgotten_and_the_key_runs_afresh(
    client: httpx.AsyncClient, spine_sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = {"Idempotency-Key": "yesterday"}
    first = await client.post("/v1/missed", json={"subject": "c-9"}, headers=headers)
    assert first.status_code == 201
    replayed = await client.post("/v1/missed", json={"subject": "c-9"}, headers=headers)
    assert replayed.headers["idempotent-replayed"] == "true"

    await _set_key(spine_sessions, "yesterday", timedelta(hours=25))
    # Expired, a different body is no longer "the same key reused": it runs as new.
    again = await client.post("/v1/missed", json={"subject": "c-10"}, headers=headers)
    assert again.status_code == 201
    assert "idempotent-replayed" not in again.headers
    assert again.json()["event_id"] != first.json()["event_id"]
    repeat = await client.post("/v1/missed", json={"subject": "c-10"}, headers=headers)
    assert repeat.json() == again.json()
    assert repeat.headers["idempotent-replayed"] == "true"


async def _set_key(
    sessions: async_sessionmaker[AsyncSession], key: str, age: timedelta, **values: Any
) -> None:
    """Make the stored key `age` old (and set any other columns given)."""
    async with sessions() as session, session.begin():
        await session.execute(
            sa.update(idempotency_keys)
            .where(idempotency_keys.c.key == key)
            .values(created_at=sa.func.now() - age, **values)
        )
