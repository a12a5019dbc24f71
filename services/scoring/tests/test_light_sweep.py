"""The light sweep re-assesses whole units, a group of units per transaction, and only the
units of the cadres that changed unless asked for the whole tenant. A light depends on the
cadre's own record and on their unit's quarter scores, so nothing outside those units can
have changed colour."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import pytest
import pytest_asyncio
import sqlalchemy as sa
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cadre.devstack.pytest_plugin import DatabaseFactory
from cadre.events.db import create_engine, migrate_async, read_session_factory, session_factory
from cadre.events.tables import event_store
from cadre.scoring.adapters.generations import create_partitions
from cadre.scoring.adapters.rankings import RankingCache
from cadre.scoring.adapters.rulesets import RulesetBook
from cadre.scoring.adapters.tables import facts, lights, members
from cadre.scoring.entrypoints import jobs
from cadre.scoring.entrypoints.jobs import ScoringState, sweep_lights, unit_groups
from cadre.scoring.settings import ScoringSettings

TENANT = "t"
TODAY = date(2026, 11, 20)
GENERATION = 1


def _rows(*pairs: tuple[str, str]) -> list[SimpleNamespace]:
    return [SimpleNamespace(cadre_id=cadre, unit_id=unit) for cadre, unit in pairs]


def _ids(groups: list[list[SimpleNamespace]]) -> list[list[str]]:
    return [[row.cadre_id for row in group] for group in groups]


def test_groups_never_split_a_unit_and_stay_near_the_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(jobs, "SWEEP_GROUP_MEMBERS", 3)
    rows = _rows(("a1", "u1"), ("a2", "u1"), ("b1", "u2"), ("c1", "u3"), ("c2", "u3"))
    rows += _rows(("c3", "u3"), ("c4", "u3"))  # a unit larger than the cap stays whole
    assert _ids(unit_groups(rows, None)) == [["a1", "a2", "b1"], ["c1", "c2", "c3", "c4"]]


def test_groups_for_changed_cadres_hold_only_their_units() -> None:
    rows = _rows(("a1", "u1"), ("a2", "u1"), ("b1", "u2"), ("c1", "u3"))
    assert _ids(unit_groups(rows, {"a2", "c1"})) == [["a1", "a2", "c1"]]
    assert unit_groups(rows, set()) == []


@pytest_asyncio.fixture
async def state(make_database: DatabaseFactory) -> AsyncIterator[ScoringState]:
    url = await make_database("sweep")
    await migrate_async("cadre.scoring.adapters.migrations", url)
    engine = create_engine(url)
    async with session_factory(engine)() as session, session.begin():
        await create_partitions(session, GENERATION, indexed=True)  # as the live one has
    settings = ScoringSettings(today=TODAY.isoformat())
    redis = Redis()  # never reached: the sweep writes no ranking
    yield ScoringState(
        settings=settings,
        sessions=session_factory(engine),
        reads=read_session_factory(engine),
        rulesets=RulesetBook.load(None),
        rankings=RankingCache(redis, ttl_s=60),
    )
    await redis.aclose()
    await engine.dispose()


async def _member(session: AsyncSession, cadre: str, unit: str) -> None:
    await session.execute(
        sa.insert(members).values(
            generation=GENERATION,
            tenant=TENANT,
            cadre_id=cadre,
            name=cadre,
            unit_id=unit,
            unit_path=f"/{unit}",
            stationed=False,
            active=True,
        )
    )


async def _absent(session: AsyncSession, cadre: str, days_ago: int) -> None:
    day = TODAY - timedelta(days=days_ago)
    await session.execute(
        sa.insert(facts).values(
            generation=GENERATION,
            event_id=uuid.uuid4(),
            metric="day_absent",
            tenant=TENANT,
            cadre_id=cadre,
            day=day,
            at=datetime(day.year, day.month, day.day, 10, tzinfo=UTC),
            key="",
            amount=1.0,
            positive=False,
            tags=[],
            revision=0,
        )
    )


async def _lights(sessions: async_sessionmaker[AsyncSession]) -> dict[str, str]:
    async with sessions() as session:
        rows = await session.execute(sa.select(lights.c.cadre_id, lights.c.light))
        return {cadre: light for cadre, light in rows}


async def _announced(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return int(
            await session.scalar(
                sa.select(sa.func.count())
                .select_from(event_store)
                .where(event_store.c.event_type == "scoring.light_changed")
            )
            or 0
        )


@pytest.mark.integration
@pytest.mark.asyncio
async def test_a_sweep_of_changed_cadres_reassesses_their_units_and_no_other(
    state: ScoringState,
) -> None:
    async with state.sessions() as session, session.begin():
        for cadre, unit in (("a1", "u1"), ("a2", "u1"), ("b1", "u2")):
            await _member(session, cadre, unit)
        for cadre in ("a1", "b1"):  # three absences in 30 days: red
            for days_ago in (1, 2, 3):
                await _absent(session, cadre, days_ago)

    assert await sweep_lights(state, GENERATION, TENANT, cadres={"a1"}) == 1
    assert await _lights(state.sessions) == {"a1": "red", "a2": "green"}

    assert await sweep_lights(state, GENERATION, TENANT) == 1  # the whole tenant: b1 now
    assert await _lights(state.sessions) == {"a1": "red", "a2": "green", "b1": "red"}
    assert await _announced(state.sessions) == 2

    assert await sweep_lights(state, GENERATION, TENANT) == 0  # nothing new, nothing said
    assert await _announced(state.sessions) == 2


@pytest.mark.integration
@pytest.mark.asyncio
async def test_a_sweep_pauses_after_each_group_as_long_as_it_took(
    state: ScoringState, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jobs, "SWEEP_GROUP_MEMBERS", 1)
    pauses: list[float] = []

    async def record(held_s: float) -> None:
        pauses.append(held_s)

    monkeypatch.setattr(jobs, "_give_back_the_cores", record)
    async with state.sessions() as session, session.begin():
        for cadre, unit in (("a1", "u1"), ("b1", "u2"), ("c1", "u3")):
            await _member(session, cadre, unit)

    await sweep_lights(state, GENERATION, TENANT)
    assert len(pauses) == 3  # one group per unit
    assert all(pause > 0 for pause in pauses)
