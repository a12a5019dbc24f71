"""Generations and fact rows on a real PostgreSQL: a failed replay leaves no rows and its
number is never handed out again; dropping a generation also forgets its consumer group's
dedup records; facts are stored exactly as folded; each generation has its own indexed
partitions, and databases from before partitioning are converted with their rows."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime

import pytest
import pytest_asyncio
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cadre.devstack.pytest_plugin import DatabaseFactory
from cadre.events.consumer import InboundRecord
from cadre.events.db import (
    alembic_config,
    copy_rows,
    create_engine,
    migrate_async,
    session_factory,
)
from cadre.events.samples import SAMPLE_DATA, sample_event
from cadre.events.tables import processed_events
from cadre.events.vocabulary import Dimension
from cadre.scoring.adapters import queries
from cadre.scoring.adapters.generations import (
    abandon_generation,
    consumer_group,
    create_generation,
    create_partitions,
    drop_generation,
    index_partition,
    without_stalling_reads,
)
from cadre.scoring.adapters.projection import ScoringProjection, fact_of_row
from cadre.scoring.adapters.rulesets import RulesetBook
from cadre.scoring.adapters.tables import contributions, facts, generations
from cadre.scoring.domain.contributions import Contribution
from cadre.scoring.domain.digest import digest, digest_of_events
from cadre.scoring.domain.facts import facts_of
from cadre.scoring.domain.ruleset import default_ruleset

pytestmark = pytest.mark.integration
PREFIX = "scoring"
MIGRATIONS = "cadre.scoring.adapters.migrations"


@pytest_asyncio.fixture
async def sessions(
    make_database: DatabaseFactory,
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on a fresh, migrated scoring database."""
    url = await make_database("generations")
    await migrate_async(MIGRATIONS, url)
    engine = create_engine(url)
    yield session_factory(engine)
    await engine.dispose()


@asynccontextmanager
async def _migrated_down_to(
    make_database: DatabaseFactory, name: str, revision: str
) -> AsyncIterator[tuple[Config, async_sessionmaker[AsyncSession]]]:
    """A fresh scoring database, migrated to the head and then down to `revision`, with
    its Alembic config (to migrate it on) and sessions."""
    url = await make_database(name)
    await migrate_async(MIGRATIONS, url)
    config = alembic_config(MIGRATIONS, url)
    engine = create_engine(url)
    try:
        await asyncio.to_thread(command.downgrade, config, revision)
        yield config, session_factory(engine)
    finally:
        await engine.dispose()


async def _new_generation(session: AsyncSession) -> int:
    generation = await create_generation(session, PREFIX)
    await create_partitions(session, generation, indexed=True)
    return generation


async def _indexes(session: AsyncSession, table: str) -> set[str]:
    found = await session.scalars(
        sa.text("SELECT indexname FROM pg_indexes WHERE tablename = :table"), {"table": table}
    )
    return set(found)


async def _partitions(session: AsyncSession, generation: int | None = None) -> set[str]:
    """The generation's partitions (of every generation when None)."""
    suffix = "[0-9]+" if generation is None else str(generation)
    found = await session.scalars(
        sa.text("SELECT tablename FROM pg_tables WHERE tablename ~ :pattern"),
        {"pattern": f"^(facts|contributions)_g{suffix}$"},
    )
    return set(found)


async def _fill(session: AsyncSession, generation: int) -> None:
    await session.execute(
        sa.insert(facts).values(
            generation=generation,
            event_id=uuid.uuid4(),
            metric="day_present",
            tenant="t",
            cadre_id="c1",
            day=date(2026, 11, 2),
            at=datetime(2026, 11, 2, 1, tzinfo=UTC),
            key="k",
            amount=1.0,
            positive=True,
            tags=[],
            revision=0,
        )
    )
    await session.execute(
        sa.insert(processed_events).values(
            consumer=consumer_group(PREFIX, generation),
            dedup_key=str(uuid.uuid4()),
            topic="attendance.events.v1",
            partition=0,
            offset=0,
            outcome="applied",
        )
    )


async def _count(session: AsyncSession, table: sa.Table, where: sa.ColumnElement[bool]) -> int:
    count = await session.scalar(sa.select(sa.func.count()).select_from(table).where(where))
    return int(count or 0)


async def test_an_abandoned_generation_is_emptied_and_its_number_never_reused(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        failed = await _new_generation(session)
        await _fill(session, failed)
    async with sessions() as session, session.begin():
        await abandon_generation(session, failed)
    async with sessions() as session, session.begin():
        status = await session.scalar(
            sa.select(generations.c.status).where(generations.c.generation == failed)
        )
        assert status == "failed"
        assert await _count(session, facts, facts.c.generation == failed) == 0
        assert not await _partitions(session, failed), "its partitions are dropped"
        group = consumer_group(PREFIX, failed)
        assert await _count(session, processed_events, processed_events.c.consumer == group) == 0
        assert await create_generation(session, PREFIX) == failed + 1, (
            "a new replay must not inherit the failed one's consumer group and offsets"
        )


async def test_dropping_a_generation_forgets_its_rows_and_dedup_records(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        old = await _new_generation(session)
        await _fill(session, old)
        kept = await _new_generation(session)
        await _fill(session, kept)
    async with sessions() as session, session.begin():
        await drop_generation(session, old)
    async with sessions() as session:
        assert await _count(session, facts, facts.c.generation == old) == 0
        assert await _count(session, facts, facts.c.generation == kept) == 1
        assert await _partitions(session) == {f"facts_g{kept}", f"contributions_g{kept}"}
        consumers = set(await session.scalars(sa.select(processed_events.c.consumer)))
        assert consumers == {consumer_group(PREFIX, kept)}


async def test_a_partition_waiting_for_a_long_read_lets_other_reads_through(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Creating a generation's partitions locks the tables exclusively. Behind a long read
    it gives up after its lock timeout and tries again, so the reads that come meanwhile
    (the live radars) are held up for at most that long, not until the long read ends."""
    async with sessions() as session, session.begin():
        live = await _new_generation(session)
        await _fill(session, live)
    async with sessions() as long_read, long_read.begin():
        await long_read.execute(sa.select(sa.func.count()).select_from(facts))  # holds on
        creating = asyncio.create_task(
            without_stalling_reads(
                sessions,
                lambda session: create_partitions(session, live + 1, indexed=False),
                lock_timeout_s=0.2,
                pause_s=0.05,
            )
        )
        for _ in range(5):  # reads while the creation keeps trying
            async with sessions() as reader:
                count = await asyncio.wait_for(
                    reader.scalar(sa.select(sa.func.count()).select_from(facts)), timeout=2
                )
            assert count == 1
            await asyncio.sleep(0.1)
        assert not creating.done(), "it waits for the long read to end"
    await asyncio.wait_for(creating, timeout=10)
    async with sessions() as session:
        assert await _partitions(session, live + 1) == {
            f"facts_g{live + 1}",
            f"contributions_g{live + 1}",
        }

    async with sessions() as long_read, long_read.begin():
        await long_read.execute(sa.select(sa.func.count()).select_from(facts))
        with pytest.raises(DBAPIError, match="lock"):  # and it does not try forever
            await without_stalling_reads(
                sessions,
                lambda session: drop_generation(session, live + 1),
                lock_timeout_s=0.1,
                attempts=3,
                pause_s=0.01,
            )


async def test_facts_are_stored_as_folded_whatever_their_tags(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Facts go to PostgreSQL as column arrays (live, and a replay's shared cadres) or by
    COPY (a replay's own cadres), their tags as JSON or arrays: what is read back must be
    exactly what the pure fold produced, for no tags, odd tags and an event seen twice."""
    odd_tags = ["coordination_success", "学习", 'quote " and , comma', "", "{braces}"]
    entry = SAMPLE_DATA["journal.entry_posted"]
    events = [
        sample_event("journal.entry_posted", data={**entry, "tags": odd_tags}),
        sample_event("journal.entry_posted", data={**entry, "tags": []}),
        sample_event("attendance.day_closed"),
    ]
    expected = {f for event in events for f in facts_of(event)}
    assert any(f.tags for f in expected)
    assert any(not f.tags for f in expected)
    record = InboundRecord("t", 0, 0, None, None)
    async with sessions() as session, session.begin():
        await create_partitions(session, 1, indexed=True)
        await create_partitions(session, 2, indexed=False)  # as a replay loads
    live = ScoringProjection(1, RulesetBook.load(None), None)
    replaying = ScoringProjection(2, RulesetBook.load(None), None, replaying=True)
    for _ in range(2):  # the second time changes nothing
        for projection in (live, replaying):
            async with sessions() as session, session.begin():
                await projection.apply_batch(session, [(event, record) for event in events])
    await replaying.derive_held(sessions)
    assert not replaying.held, "a replay forgets the facts it has written"
    async with sessions() as session, session.begin():
        # The unique key, built after the load, would refuse an event's fact written twice.
        await index_partition(session, "facts", 2)

    async with sessions() as session:
        for generation in (1, 2):
            rows = await session.execute(sa.select(facts).where(facts.c.generation == generation))
            assert {fact_of_row(row) for row in rows} == expected


async def test_a_replay_derives_from_held_facts_what_it_derives_from_stored_ones(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """The two ways a replay derives a cadre, from the facts it holds or (when other
    processes folded some of that cadre's events) from the table after `release`, give
    the same contribution rows."""
    entry = SAMPLE_DATA["journal.entry_posted"]
    events = [
        sample_event("journal.entry_posted", data={**entry, "entry_id": f"e-{day}", "day": day})
        for day in ("2026-11-16", "2026-11-17", "2026-11-18")
    ] + [sample_event("attendance.day_closed")]
    record = InboundRecord("t", 0, 0, None, None)
    async with sessions() as session, session.begin():
        for generation in (1, 2):  # loaded bare; the stored way needs the facts key first
            await create_partitions(session, generation, indexed=False)
        await index_partition(session, "facts", 2)
    held = ScoringProjection(1, RulesetBook.load(None), None, replaying=True)
    stored = ScoringProjection(2, RulesetBook.load(None), None, replaying=True)
    for projection in (held, stored):
        async with sessions() as session, session.begin():
            await projection.apply_batch(session, [(event, record) for event in events])
    cadres = sorted(stored.held)
    async with sessions() as session, session.begin():
        await stored.release(session, cadres)
    assert not stored.held
    await held.derive_held(sessions)
    await stored.derive_stored(sessions, cadres)

    async with sessions() as session:
        by_generation: dict[int, set[tuple[object, ...]]] = {1: set(), 2: set()}
        for row in await session.execute(sa.select(contributions)):
            by_generation[row.generation].add(tuple(row)[1:])
    assert by_generation[1], "the entries earned points"
    assert by_generation[1] == by_generation[2]


async def test_a_cadres_contributions_are_found_by_their_partitions_key(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """No (cadre_id, day) index on contributions: looking up a cadre's contributions in a
    period must still be an index scan, on the key of the generation's partition."""
    async with sessions() as session, session.begin():
        await create_partitions(session, 1, indexed=True)
        # A county's worth of rows, so the planner weighs real statistics: 200 cadres
        # with a contribution a day for 200 days.
        await session.execute(
            sa.text(
                "INSERT INTO contributions (generation, tenant, cadre_id, event_id, rule,"
                " dimension, day, raw_points, points, voided)"
                " SELECT 1, 't', 'c' || c, gen_random_uuid(), 'r', 'learning',"
                " DATE '2026-06-01' + d, 1, 1, false"
                " FROM generate_series(1, 200) AS c, generate_series(0, 199) AS d"
            )
        )
    async with sessions() as session:
        await session.execute(sa.text("ANALYZE contributions_g1"))
        plan = "\n".join(
            await session.scalars(
                sa.text(
                    "EXPLAIN SELECT * FROM contributions WHERE generation = 1"
                    " AND tenant = 't' AND cadre_id = 'c1'"
                    " AND day BETWEEN '2026-11-01' AND '2026-11-30'"
                )
            )
        )
        assert "contributions_g1_key" in plan
        assert await _indexes(session, "contributions_g1") == {
            "contributions_g1_key",
            "contributions_g1_by_day",
        }
        assert await _indexes(session, "contributions") == set(), "the parent has none"


async def test_a_database_from_before_partitioning_keeps_its_rows_in_indexed_partitions(
    make_database: DatabaseFactory,
) -> None:
    async with _migrated_down_to(make_database, "partition-migration", "sco_0001") as (
        config,
        sessions,
    ):
        async with sessions() as session, session.begin():
            # As databases made before had them: one table each, the generation in the key.
            assert "contributions_by_cadre_day" in await _indexes(session, "contributions")
            assert "facts_pkey" in await _indexes(session, "facts")
            live = await create_generation(session, PREFIX)
            await _fill(session, live)
            await _fill(session, live + 1)  # rows of a generation without a row of its own
        await asyncio.to_thread(command.upgrade, config, "heads")
        async with sessions() as session:
            assert await _count(session, facts, facts.c.generation == live) == 1
            assert await _count(session, facts, facts.c.generation == live + 1) == 1
            for generation in (live, live + 1):
                assert await _indexes(session, f"facts_g{generation}") == {
                    f"facts_g{generation}_key",
                    f"facts_g{generation}_by_cadre",
                    f"facts_g{generation}_by_day",
                }
                assert await _indexes(session, f"contributions_g{generation}") == {
                    f"contributions_g{generation}_key",
                    f"contributions_g{generation}_by_day",
                }, "and no (cadre_id, day) index (sco_0002)"
            daily = await session.scalar(sa.text("SELECT sum(count) FROM daily_counters"))
            assert daily == 2, "the daily counters view is back, over the partitions"
        await asyncio.to_thread(command.downgrade, config, "sco_0002")
        async with sessions() as session:
            assert await _count(session, facts, facts.c.generation == live) == 1
            assert "facts_pkey" in await _indexes(session, "facts")
            assert not await _partitions(session), "no partitions are left"


async def test_directory_events_change_members_units_and_workdays_in_order(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Directory events are applied as runs of one statement each (a replay registers every
    cadre in a row): the outcome must be that of applying them one by one, in order, in
    one batch or across batches, for the live projection and a replay alike."""
    registered = SAMPLE_DATA["directory.cadre_registered"]
    unit = SAMPLE_DATA["directory.unit_created"]
    transferred = SAMPLE_DATA["directory.cadre_transferred"]
    events = [
        sample_event("directory.unit_created"),
        sample_event("directory.unit_created", data={**unit, "name": "乐业镇人民政府"}),
        *(
            sample_event("directory.cadre_registered", data={**registered, "cadre_id": cadre})
            for cadre in ("c-001", "c-002", "c-003")
        ),
        sample_event("directory.cadre_updated"),  # c-001: not stationed any more
        sample_event("directory.cadre_transferred"),  # c-001 to pingle
        sample_event(
            "directory.cadre_deactivated", data={"cadre_id": "c-002", "reason": "retired"}
        ),
        sample_event("directory.role_granted"),  # no effect on scores
        sample_event("directory.workday_overridden"),  # 2026-11-23 is no workday
        sample_event("directory.workday_overridden", data={"day": "2026-11-28", "workday": True}),
        sample_event("directory.workday_overridden", data={"day": "2026-11-28", "workday": None}),
        # c-003 moves, then registers again: the registration, coming last, decides.
        sample_event("directory.cadre_transferred", data={**transferred, "cadre_id": "c-003"}),
        sample_event(
            "directory.cadre_registered", data={**registered, "cadre_id": "c-003", "name": "李四"}
        ),
    ]
    record = InboundRecord("t", 0, 0, None, None)
    async with sessions() as session, session.begin():
        await create_partitions(session, 1, indexed=True)
    live = ScoringProjection(1, RulesetBook.load(None), None)
    replaying = ScoringProjection(2, RulesetBook.load(None), None, replaying=True)
    for projection, batches in ((live, [events]), (replaying, [events[:4], events[4:]])):
        for batch in batches:
            async with sessions() as session, session.begin():
                await projection.apply_batch(session, [(event, record) for event in batch])

    for generation in (1, 2):
        async with sessions() as session:
            rows = await session.execute(
                sa.text(
                    "SELECT cadre_id, name, unit_id, unit_path, stationed, active FROM members"
                    " WHERE generation = :g ORDER BY cadre_id"
                ),
                {"g": generation},
            )
            assert [tuple(row) for row in rows] == [
                ("c-001", "张三", "pingle", "/gz/wangmo/pingle", False, True),
                ("c-002", "张三", "leye", "/gz/wangmo/leye", True, False),
                ("c-003", "李四", "leye", "/gz/wangmo/leye", True, True),
            ]
            units = await session.execute(
                sa.text("SELECT unit_id, name, path FROM units WHERE generation = :g"),
                {"g": generation},
            )
            assert [tuple(row) for row in units] == [("leye", "乐业镇人民政府", "/gz/wangmo/leye")]
            workdays = await session.execute(
                sa.text("SELECT day, workday FROM workday_overrides WHERE generation = :g"),
                {"g": generation},
            )
            assert [tuple(row) for row in workdays] == [(date(2026, 11, 23), False)]


@pytest.mark.parametrize(
    "odd_cadre", ["c-1", "c\\7", "c\t8", "c\n9"], ids=["plain", "backslash", "tab", "newline"]
)
async def test_the_stored_digest_is_the_digest_of_the_pure_fold(
    sessions: async_sessionmaker[AsyncSession], odd_cadre: str
) -> None:
    """PostgreSQL builds and sends the facts' digest lines itself (COPY's text format, which
    escapes a backslash, tab or newline: those take the slow way); both ways must give the
    digest the pure domain gives for the same facts and contributions, of a whole
    generation and of one tenant. Ids that sort one way as columns and another as lines
    (c-1 and c-10: "|" sorts after "0") check the order."""
    entry = SAMPLE_DATA["journal.entry_posted"]
    events = [
        sample_event(
            "journal.entry_posted",
            subject=cadre,
            data={**entry, "entry_id": f"e-{day}", "day": day, "text": "走访群众，整理台账"},
        )
        for cadre in (odd_cadre, "c-10", "张三")
        for day in ("2026-11-16", "2026-11-17")
    ] + [sample_event("attendance.day_closed", subject="c-10", tenant="other")]
    record = InboundRecord("t", 0, 0, None, None)
    async with sessions() as session, session.begin():
        await create_partitions(session, 1, indexed=False)
    projection = ScoringProjection(1, RulesetBook.load(None), None, replaying=True)
    async with sessions() as session, session.begin():
        await projection.apply_batch(session, [(event, record) for event in events])
    await projection.derive_held(sessions)

    for tenant in (None, "demo"):
        chosen = [event for event in events if tenant in (None, event.tenant)]
        expected = digest_of_events(chosen, default_ruleset())
        assert await queries.generation_digest(sessions, 1, tenant) == expected


async def _index_columns(session: AsyncSession, partition: str) -> dict[str, str]:
    """Each index of `partition` by name, as its column list."""
    rows = await session.execute(
        sa.text("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = :table"),
        {"table": partition},
    )
    return {name: definition.split(" (", 1)[1].rstrip(")") for name, definition in rows}


_COLUMN_FACTS = {"collation": "collation_name", "default": "column_default"}


async def _column(session: AsyncSession, table: str, column: str, fact: str) -> str | None:
    """One fact (`_COLUMN_FACTS`) about a column, as information_schema gives it."""
    found: str | None = await session.scalar(
        sa.text(
            f"SELECT {_COLUMN_FACTS[fact]} FROM information_schema.columns"
            " WHERE table_name = :table AND column_name = :column"
        ),
        {"table": table, "column": column},
    )
    return found


async def test_partitions_made_before_are_indexed_by_cadre_or_day_in_byte_order(
    make_database: DatabaseFactory,
) -> None:
    """sco_0004 moves the tenant out of the lead of every index and puts cadre ids in byte
    order, for the partitions of generations made before it (rows kept, a replay's bare
    partitions left bare), and the downgrade puts them back."""
    async with _migrated_down_to(make_database, "byte-order-migration", "sco_0003") as (
        config,
        sessions,
    ):
        async with sessions() as session, session.begin():
            live = await create_generation(session, PREFIX)
            await create_partitions(session, live, indexed=False)
            for index in (  # as the code of sco_0003's time indexed a partition
                f"UNIQUE INDEX facts_g{live}_key ON facts_g{live} (event_id, metric)",
                f"INDEX facts_g{live}_by_cadre ON facts_g{live} (tenant, cadre_id, day)",
                f"INDEX facts_g{live}_by_day ON facts_g{live} (tenant, day)",
                f"UNIQUE INDEX contributions_g{live}_key ON contributions_g{live}"
                " (tenant, cadre_id, event_id, rule, dimension)",
                f"INDEX contributions_g{live}_by_day ON contributions_g{live} (tenant, day)",
            ):
                await session.execute(sa.text(f"CREATE {index}"))
            await _fill(session, live)
            building = await create_generation(session, PREFIX)
            await create_partitions(session, building, indexed=False)
        async with sessions() as session:
            assert await _column(session, "facts", "cadre_id", "collation") is None
            assert (await _index_columns(session, f"facts_g{live}"))[
                f"facts_g{live}_by_cadre"
            ] == "tenant, cadre_id, day"
        await asyncio.to_thread(command.upgrade, config, "heads")
        async with sessions() as session:
            for table in ("facts", "contributions"):
                assert await _column(session, table, "cadre_id", "collation") == "C"
            assert await _index_columns(session, f"facts_g{live}") == {
                f"facts_g{live}_key": "event_id, metric",
                f"facts_g{live}_by_cadre": "cadre_id, tenant, day",
                f"facts_g{live}_by_day": "day, tenant",
            }
            assert await _index_columns(session, f"contributions_g{live}") == {
                f"contributions_g{live}_key": "cadre_id, tenant, event_id, rule, dimension",
                f"contributions_g{live}_by_day": "day, tenant",
            }
            assert await _index_columns(session, f"facts_g{building}") == {}
            assert await _count(session, facts, facts.c.generation == live) == 1
            daily = await session.scalar(sa.text("SELECT sum(count) FROM daily_counters"))
            assert daily == 1
        await asyncio.to_thread(command.downgrade, config, "sco_0003")
        async with sessions() as session:
            assert await _column(session, "facts", "cadre_id", "collation") is None
            assert (await _index_columns(session, f"contributions_g{live}"))[
                f"contributions_g{live}_key"
            ] == "tenant, cadre_id, event_id, rule, dimension"


async def test_rows_copied_in_a_transaction_that_rolls_back_are_not_kept(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """`copy_rows` runs inside the session's transaction even as its first statement (the
    driver begins it first): a replay's chunk that fails leaves nothing behind."""
    async with sessions() as session, session.begin():
        await create_partitions(session, 1, indexed=False)
    row = (
        1,
        "t",
        "c1",
        uuid.uuid4(),
        "first_entry",
        "responsibility",
        date(2026, 11, 2),
        1.0,
        1.0,
        False,
    )
    columns = ("generation", "tenant", "cadre_id", "event_id", "rule", "dimension", "day",
               "raw_points", "points", "voided")  # fmt: skip

    async def copy_then_fail() -> None:
        async with sessions() as session, session.begin():
            await copy_rows(session, "contributions_g1", columns, [row])
            raise RuntimeError("the chunk failed")

    with pytest.raises(RuntimeError, match="the chunk failed"):
        await copy_then_fail()
    async with sessions() as session:
        assert await _count(session, contributions, contributions.c.generation == 1) == 0


@pytest.mark.parametrize(
    "values",
    [(1.0, 4.5, -3.0, 0.0, 0.015625, 99_999_999.984375), (5e-7,), (-0.0,), (1 / 3,), (1e9,)],
    ids=["sixty-fourths", "just-under-a-half-millionth", "minus-zero", "a-third", "a-billion"],
)
async def test_the_stored_digest_writes_points_as_python_does(
    sessions: async_sessionmaker[AsyncSession], values: tuple[float, ...]
) -> None:
    """PostgreSQL writes a contribution's points in the digest line itself only where its
    text is Python's "{:.6f}" (multiples of 1/64 under 10^8, not -0.0). Another value
    sends the contributions the slow way, where Python writes them: 5e-7 is a little
    under half a millionth as a float ("0.000000"), which PostgreSQL's numeric reads as
    exactly half ("0.000001")."""
    made = [
        Contribution("c-1", date(2026, 11, 16), dimension, f"r{i}", uuid.uuid4(), value,
                     value * 2 if i % 2 else value, voided=bool(i % 3 == 2))
        for i, value in enumerate(values)
        for dimension in (Dimension.RESPONSIBILITY, Dimension.POLITICS)
    ]  # fmt: skip
    async with sessions() as session, session.begin():
        await create_partitions(session, 1, indexed=False)
        await session.execute(
            sa.insert(contributions),
            [
                {"generation": 1, "tenant": "demo", **c._asdict(), "dimension": c.dimension.value}
                for c in made
            ],
        )
    assert await queries.generation_digest(sessions, 1) == digest([], made)


async def test_facts_tags_default_to_none_on_partitions_made_before_and_after(
    make_database: DatabaseFactory,
) -> None:
    """sco_0005: a replay copies facts without tags leaving the column out, so it must
    default to no tags on every partition, made before the migration or after it; the
    downgrade takes the default away."""
    async with _migrated_down_to(make_database, "tags-default", "sco_0004") as (
        config,
        sessions,
    ):
        async with sessions() as session, session.begin():
            before = await _new_generation(session)
        async with sessions() as session:
            assert await _column(session, f"facts_g{before}", "tags", "default") is None
        await asyncio.to_thread(command.upgrade, config, "heads")
        async with sessions() as session, session.begin():
            after = await _new_generation(session)
            for generation in (before, after):
                assert (
                    await _column(session, f"facts_g{generation}", "tags", "default")
                    == "'{}'::text[]"
                )
                await session.execute(
                    sa.text(
                        f"INSERT INTO facts_g{generation} (generation, tenant, event_id, metric,"
                        " cadre_id, day, at, key, amount, positive, revision) VALUES (:g, 'demo',"
                        " gen_random_uuid(), 'study', 'c-1', '2026-11-16', now(), '', 1, true, 1)"
                    ),
                    {"g": generation},
                )
            tags = await session.scalars(sa.text("SELECT tags FROM facts"))
            assert list(tags) == [[], []]
        await asyncio.to_thread(command.downgrade, config, "sco_0004")
        async with sessions() as session:
            assert await _column(session, f"facts_g{after}", "tags", "default") is None


async def test_key_columns_are_in_byte_order_on_partitions_made_before_and_after(
    make_database: DatabaseFactory,
) -> None:
    """sco_0006 puts the tenant, metric, rule and dimension in byte order on every
    partition, made before the migration (rows and indexes kept) or after it; the
    downgrade puts them back in the database's collation."""
    byte_ordered = {"facts": ("tenant", "metric"), "contributions": ("tenant", "rule", "dimension")}
    async with _migrated_down_to(make_database, "key-byte-order", "sco_0005") as (
        config,
        sessions,
    ):
        async with sessions() as session, session.begin():
            before = await _new_generation(session)
            await _fill(session, before)
            await session.execute(
                sa.insert(contributions).values(
                    generation=before, tenant="t", cadre_id="c1", event_id=uuid.uuid4(),
                    rule="first_entry", dimension="responsibility", day=date(2026, 11, 2),
                    raw_points=1.0, points=1.0, voided=False,
                )
            )  # fmt: skip
        async with sessions() as session:
            for table, columns in byte_ordered.items():
                for column in columns:
                    assert await _column(session, f"{table}_g{before}", column, "collation") is None
            indexes_before = {
                table: await _index_columns(session, f"{table}_g{before}") for table in byte_ordered
            }
        await asyncio.to_thread(command.upgrade, config, "heads")
        async with sessions() as session, session.begin():
            after = await _new_generation(session)
            for generation in (before, after):
                for table, columns in byte_ordered.items():
                    for column in columns:
                        partition = f"{table}_g{generation}"
                        assert await _column(session, partition, column, "collation") == "C"
            assert {
                table: await _index_columns(session, f"{table}_g{before}") for table in byte_ordered
            } == indexes_before
            assert await _count(session, facts, facts.c.generation == before) == 1
            assert await _count(session, contributions, contributions.c.generation == before) == 1
            daily = await session.scalar(sa.text("SELECT sum(count) FROM daily_counters"))
            assert daily == 1
        await asyncio.to_thread(command.downgrade, config, "sco_0005")
        async with sessions() as session:
            for generation in (before, after):
                for table, columns in byte_ordered.items():
                    for column in columns:
                        partition = f"{table}_g{generation}"
                        assert await _column(session, partition, column, "collation") is None
