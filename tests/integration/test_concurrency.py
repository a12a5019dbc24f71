"""Optimistic concurrency: of 20 appends at the same expected version exactly one wins."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import sqlalchemy as sa
from fastapi import APIRouter, FastAPI, Request
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cadre.events.catalogue import AnyEvent
from cadre.events.problems import install_problem_handlers
from cadre.events.samples import sample_event
from cadre.events.store import ConcurrencyError, append, append_in_transaction, read_stream
from cadre.events.tables import event_store, outbox

pytestmark = [pytest.mark.integration]


async def test_twenty_concurrent_appends_at_the_same_version_one_wins(
    spine_sessions: async_sessionmaker[AsyncSession],
) -> None:
    await append_in_transaction(
        spine_sessions, "leave-1", 0, [sample_event("attendance.leave_requested")]
    )
    contenders = [
        sample_event("attendance.leave_step_approved", actor=f"leader-{i}") for i in range(20)
    ]

    results = await asyncio.gather(
        *(append_in_transaction(spine_sessions, "leave-1", 1, [event]) for event in contenders),
        return_exceptions=True,
    )

    winners = [r for r in results if r == 2]
    conflicts = [r for r in results if isinstance(r, ConcurrencyError)]
    assert len(winners) == 1
    assert len(conflicts) == 19, [r for r in results if not isinstance(r, ConcurrencyError | int)]
    assert all(c.stream_id == "leave-1" and c.expected_version == 1 for c in conflicts)
    async with spine_sessions() as session:
        stream = await read_stream(session, "leave-1")
        assert len(stream) == 2
        winner_id = stream[1].id
        assert winner_id in {e.id for e in contenders}
        # Losers left nothing behind: no event rows, no outbox rows.
        assert await session.scalar(sa.select(sa.func.count()).select_from(event_store)) == 2
        outbox_ids = set((await session.execute(sa.select(outbox.c.event_id))).scalars())
        assert outbox_ids == {stream[0].id, winner_id}


async def test_a_stale_expected_version_is_refused_with_the_actual_version(
    spine_sessions: async_sessionmaker[AsyncSession],
) -> None:
    await append_in_transaction(spine_sessions, "s", 0, [sample_event("journal.journal_missed")])
    with pytest.raises(ConcurrencyError) as raised:
        await append_in_transaction(
            spine_sessions, "s", 0, [sample_event("journal.journal_missed")]
        )
    assert raised.value.actual_version == 1


class AppendBody(BaseModel):
    expected_version: int


async def test_the_http_layer_turns_a_conflict_into_409_problem_json(
    spine_sessions: async_sessionmaker[AsyncSession],
) -> None:
    router = APIRouter()

    @router.post("/streams/{stream_id}/events", status_code=201)
    async def post_event(stream_id: str, body: AppendBody, request: Request) -> dict[str, int]:
        sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
        async with sessions() as session, session.begin():
            version = await append(
                session, stream_id, body.expected_version, [sample_event("journal.journal_missed")]
            )
        return {"version": version}

    app = FastAPI()
    app.state.sessions = spine_sessions
    install_problem_handlers(app)
    app.include_router(router, prefix="/v1")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        first = await client.post("/v1/streams/x/events", json={"expected_version": 0})
        stale = await client.post("/v1/streams/x/events", json={"expected_version": 0})
    assert first.status_code == 201
    assert stale.status_code == 409
    assert stale.headers["content-type"] == "application/problem+json"
    problem = stale.json()
    assert problem["code"] == "concurrent-modification"
    assert problem["status"] == 409
    assert problem["stream_id"] == "x"
    assert problem["expected_version"] == 0
    assert problem["actual_version"] == 1


async def test_racing_multi_event_appends_leave_a_gapless_stream_and_no_orphan_outbox_rows(
    spine_sessions: async_sessionmaker[AsyncSession],
) -> None:
    def batch(size: int) -> list[AnyEvent]:
        return [sample_event("journal.journal_missed") for _ in range(size)]

    # Sizes 1..3 race for version 1, so a loser can collide part-way through its batch.
    contenders = [batch(1 + i % 3) for i in range(20)]
    results = await asyncio.gather(
        *(append_in_transaction(spine_sessions, "multi", 0, events) for events in contenders),
        return_exceptions=True,
    )
    winners = [i for i, r in enumerate(results) if isinstance(r, int)]
    assert len(winners) == 1
    assert all(isinstance(r, ConcurrencyError) for i, r in enumerate(results) if i != winners[0])
    winning_ids = [e.id for e in contenders[winners[0]]]
    async with spine_sessions() as session:
        rows = (
            await session.execute(
                sa.select(event_store.c.stream_version, event_store.c.event_id)
                .where(event_store.c.stream_id == "multi")
                .order_by(event_store.c.stream_version)
            )
        ).all()
        assert [row.stream_version for row in rows] == list(range(1, len(winning_ids) + 1))
        assert [row.event_id for row in rows] == winning_ids
        outbox_ids = set((await session.execute(sa.select(outbox.c.event_id))).scalars())
        assert outbox_ids == set(winning_ids)
