"""Reads of one generation of the projection."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cadre.events.calendar import WorkdayCalendar
from cadre.events.db import driver_in_transaction
from cadre.events.units import in_subtree
from cadre.events.vocabulary import Dimension
from cadre.scoring.adapters.generations import without_parallel_workers
from cadre.scoring.adapters.projection import contribution_of_row, fact_of_row
from cadre.scoring.adapters.tables import (
    contributions,
    facts,
    lights,
    members,
    units,
    workday_overrides,
)
from cadre.scoring.domain.assess import Member
from cadre.scoring.domain.contributions import Contribution
from cadre.scoring.domain.digest import DigestHasher, contribution_text_from_prefix
from cadre.scoring.domain.facts import Fact
from cadre.scoring.domain.tasks import TASK_METRICS

# The two statements of every radar read, built once: building them per request (operators,
# coercions, cache keys) was about a tenth of scoring's CPU while dashboards polled radars.
_MEMBER = sa.select(members).where(
    members.c.generation == sa.bindparam("gen"),
    members.c.tenant == sa.bindparam("tenant"),
    members.c.cadre_id == sa.bindparam("cadre_id"),
)
# One cadre's contributions within [start, end]: the filter of the radar, explain and the
# timeline, bound through `_cadre_window`.
_CADRE_WINDOW = (
    contributions.c.generation == sa.bindparam("gen"),
    contributions.c.tenant == sa.bindparam("tenant"),
    contributions.c.cadre_id == sa.bindparam("cadre_id"),
    contributions.c.day.between(sa.bindparam("start"), sa.bindparam("end")),
)
_DIMENSION_TOTALS = (
    sa.select(contributions.c.dimension, sa.func.sum(contributions.c.points))
    .where(*_CADRE_WINDOW)
    .group_by(contributions.c.dimension)
)


async def member(session: AsyncSession, gen: int, tenant: str, cadre_id: str) -> Any:
    who = {"gen": gen, "tenant": tenant, "cadre_id": cadre_id}
    return (await session.execute(_MEMBER, who)).first()


async def unit(session: AsyncSession, gen: int, tenant: str, unit_id: str) -> Any:
    return (
        await session.execute(
            sa.select(units).where(
                units.c.generation == gen, units.c.tenant == tenant, units.c.unit_id == unit_id
            )
        )
    ).first()


async def member_names(
    session: AsyncSession, gen: int, tenant: str, cadre_ids: list[str]
) -> dict[str, str]:
    rows = await session.execute(
        sa.select(members.c.cadre_id, members.c.name).where(
            members.c.generation == gen,
            members.c.tenant == tenant,
            members.c.cadre_id.in_(cadre_ids),
        )
    )
    return {cadre: name for cadre, name in rows}


def _cadre_window(gen: int, tenant: str, cadre_id: str, start: date, end: date) -> dict[str, Any]:
    """The parameters of `_CADRE_WINDOW`."""
    return {"gen": gen, "tenant": tenant, "cadre_id": cadre_id, "start": start, "end": end}


async def dimension_totals(
    session: AsyncSession, gen: int, tenant: str, cadre_id: str, start: date, end: date
) -> dict[Dimension, float]:
    rows = await session.execute(
        _DIMENSION_TOTALS, _cadre_window(gen, tenant, cadre_id, start, end)
    )
    totals = dict.fromkeys(Dimension, 0.0)
    for dimension, points in rows:
        totals[Dimension(dimension)] = round(float(points), 6)
    return totals


async def unit_dimension_averages(
    session: AsyncSession, gen: int, tenant: str, unit_path: str, start: date, end: date
) -> tuple[int, dict[Dimension, float]]:
    """The mean of each dimension over the active members of `unit_path` and below (members
    with no points count as 0), and how many members that is."""
    in_unit = sa.select(members.c.cadre_id).where(
        members.c.generation == gen,
        members.c.tenant == tenant,
        members.c.active.is_(True),
        in_subtree(members.c.unit_path, unit_path),
    )
    count = int(
        await session.scalar(sa.select(sa.func.count()).select_from(in_unit.subquery())) or 0
    )
    averages = dict.fromkeys(Dimension, 0.0)
    if count == 0:
        return 0, averages
    rows = await session.execute(
        sa.select(contributions.c.dimension, sa.func.sum(contributions.c.points))
        .where(
            contributions.c.generation == gen,
            contributions.c.tenant == tenant,
            contributions.c.cadre_id.in_(in_unit),
            contributions.c.day.between(start, end),
        )
        .group_by(contributions.c.dimension)
    )
    for dimension, points in rows:
        averages[Dimension(dimension)] = round(float(points) / count, 6)
    return count, averages


async def explain_rows(
    session: AsyncSession,
    gen: int,
    tenant: str,
    cadre_id: str,
    start: date,
    end: date,
    dimension: Dimension | None,
) -> list[Contribution]:
    query = sa.select(contributions).where(*_CADRE_WINDOW)
    if dimension is not None:
        query = query.where(contributions.c.dimension == dimension.value)
    rows = await session.execute(query, _cadre_window(gen, tenant, cadre_id, start, end))
    return sorted(
        (contribution_of_row(row) for row in rows),
        key=lambda c: (c.day, c.dimension.value, c.rule, str(c.event_id)),
    )


async def daily_totals(
    session: AsyncSession, gen: int, tenant: str, cadre_id: str, start: date, end: date
) -> dict[date, dict[Dimension, float]]:
    rows = await session.execute(
        sa.select(
            contributions.c.day, contributions.c.dimension, sa.func.sum(contributions.c.points)
        )
        .where(*_CADRE_WINDOW)
        .group_by(contributions.c.day, contributions.c.dimension),
        _cadre_window(gen, tenant, cadre_id, start, end),
    )
    days: dict[date, dict[Dimension, float]] = defaultdict(lambda: dict.fromkeys(Dimension, 0.0))
    for day, dimension, points in rows:
        days[day][Dimension(dimension)] = round(float(points), 6)
    return dict(days)


async def tenants(session: AsyncSession, gen: int) -> list[str]:
    rows = await session.execute(
        sa.select(members.c.tenant).where(members.c.generation == gen).distinct()
    )
    return sorted(rows.scalars())


async def active_members(session: AsyncSession, gen: int, tenant: str) -> list[Any]:
    rows = await session.execute(
        sa.select(members)
        .where(members.c.generation == gen, members.c.tenant == tenant, members.c.active.is_(True))
        .order_by(members.c.cadre_id)
    )
    return list(rows)


def as_member(row: Any) -> Member:
    return Member(row.cadre_id, row.unit_id, row.stationed)


async def calendar(session: AsyncSession, gen: int, tenant: str) -> WorkdayCalendar:
    rows = await session.execute(
        sa.select(workday_overrides.c.day, workday_overrides.c.workday).where(
            workday_overrides.c.generation == gen, workday_overrides.c.tenant == tenant
        )
    )
    return WorkdayCalendar({day: workday for day, workday in rows})


async def tenant_facts(
    session: AsyncSession,
    gen: int,
    tenant: str,
    since: date | None = None,
    cadres: Sequence[str] | None = None,
) -> list[Fact]:
    """The tenant's facts (of `cadres` only, if given) from `since` on; open tasks are
    looked up whatever their age."""
    query = sa.select(facts).where(facts.c.generation == gen, facts.c.tenant == tenant)
    if cadres is not None:
        query = query.where(facts.c.cadre_id == sa.func.any(_text_array(cadres)))
    if since is not None:
        query = query.where(
            sa.or_(
                facts.c.day >= since,
                facts.c.metric.in_([metric.value for metric in TASK_METRICS]),
            )
        )
    return [fact_of_row(row) for row in await session.execute(query)]


async def tenant_contributions(
    session: AsyncSession,
    gen: int,
    tenant: str,
    since: date | None = None,
    cadres: Sequence[str] | None = None,
) -> list[Contribution]:
    query = sa.select(contributions).where(
        contributions.c.generation == gen, contributions.c.tenant == tenant
    )
    if cadres is not None:
        query = query.where(contributions.c.cadre_id == sa.func.any(_text_array(cadres)))
    if since is not None:
        query = query.where(contributions.c.day >= since)
    return [contribution_of_row(row) for row in await session.execute(query)]


async def current_lights(
    session: AsyncSession, gen: int, tenant: str, cadres: Sequence[str] | None = None
) -> dict[str, Any]:
    query = sa.select(lights).where(lights.c.generation == gen, lights.c.tenant == tenant)
    if cadres is not None:
        query = query.where(lights.c.cadre_id == sa.func.any(_text_array(cadres)))
    return {row.cadre_id: row for row in await session.execute(query)}


def _text_array(values: Sequence[str]) -> sa.ColumnElement[Any]:
    """One array parameter (`= ANY(...)`), so the statement is the same for any count."""
    return sa.cast(sa.bindparam(None, list(values), type_=sa.ARRAY(sa.Text)), sa.ARRAY(sa.Text))


# The digest's lines, in their order (byte order of the line), from the columns: days as
# ISO text (PostgreSQL's default DateStyle), ids in their canonical form as str(UUID)
# gives them. A fact's line is whole.
_FACT_LINES = """
SELECT concat('f|', cadre_id, '|', day::text, '|', metric, '|', event_id::text)
       COLLATE "C" AS line
FROM facts WHERE generation = $1 {tenant} ORDER BY 1
"""
# A contribution's line ends in its points as Python's "{:.6f}" writes them: the exact
# decimal value of the float, rounded to six places. PostgreSQL writes the same text for
# a multiple of 1/64 under 10^8 (its exact decimal has at most six places and fourteen
# digits, and a float8 becomes numeric through fifteen), but for -0.0 ("-0.000000" in
# Python); any other row is a lone backslash, which COPY escapes, so that the digest
# takes the slow way, where Python writes every line (`_CONTRIBUTION_PREFIXES`).
_EXACT = "({0} * 64 = trunc({0} * 64) AND abs({0}) < 1e8 AND ({0} <> 0 OR {0}::text = '0'))"
_CONTRIBUTION_LINES = f"""
SELECT CASE WHEN {_EXACT.format("raw_points")} AND {_EXACT.format("points")}
            THEN concat('c|', cadre_id, '|', day::text, '|', dimension, '|', rule, '|',
                        event_id::text, '|', round(raw_points::numeric, 6), '|',
                        round(points::numeric, 6), '|', voided::int)
            ELSE '\\' END COLLATE "C" AS line
FROM contributions WHERE generation = $1 {{tenant}} ORDER BY 1
"""
_CONTRIBUTION_PREFIXES = """
SELECT concat(cadre_id, '|', day::text, '|', dimension, '|', rule, '|', event_id::text, '|')
       COLLATE "C" AS prefix, raw_points, points, voided
FROM contributions WHERE generation = $1 {tenant} ORDER BY 1
"""
_END = b""  # the end of a COPY's output, in the queue that hands its chunks on


async def generation_digest(
    sessions: async_sessionmaker[AsyncSession],
    gen: int,
    tenant: str | None = None,
    *,
    parallel_workers: bool = True,
) -> str:
    """The digest of a generation (of one tenant, or of all), streamed: rows come in the
    order of their digest lines, so memory stays flat however large the projection is (10k
    cadres × 90 days held 2.9 GB). PostgreSQL builds every line and sends them by `COPY
    ... TO STDOUT`, which are then exactly the bytes hashed: no row of millions goes
    through Python. Through SQLAlchemy's rows, the digest of a 10k × 90 replay cost its
    coordinator 3 s of CPU; reading and completing the contributions' lines in Python,
    2.9 s. The contributions come on a connection of their own, whose sort runs while
    the facts are hashed. A line COPY has to escape (a cadre id with a backslash, tab or
    newline; points PostgreSQL cannot write as Python does) sends that part the slow way,
    row by row. `parallel_workers=False`: no parallel query workers (a replay's digest,
    whose cores its index builds keep busy)."""
    where, arguments = ("AND tenant = $2", (gen, tenant)) if tenant else ("", (gen,))
    async with (
        sessions() as facts_session,
        facts_session.begin(),
        sessions() as contributions_session,
        contributions_session.begin(),
    ):
        if not parallel_workers:
            for session in (facts_session, contributions_session):
                await without_parallel_workers(session)
        facts_driver = await driver_in_transaction(facts_session)
        contributions_driver = await driver_in_transaction(contributions_session)
        # A few chunks ahead at most: the COPY waits for the facts (its sort is done first).
        chunks: asyncio.Queue[bytes] = asyncio.Queue(maxsize=4)

        async def copy_contributions() -> None:
            await contributions_driver.copy_from_query(
                _CONTRIBUTION_LINES.format(tenant=where), *arguments, output=chunks.put
            )
            await chunks.put(_END)

        copying = asyncio.ensure_future(copy_contributions())
        try:
            fact_lines = _FACT_LINES.format(tenant=where)
            facts_copied = _CopiedLines(DigestHasher())
            await facts_driver.copy_from_query(fact_lines, *arguments, output=facts_copied.take)
            hasher = facts_copied.hasher
            if facts_copied.escaped:
                hasher = DigestHasher()
                facts_cursor = await facts_driver.cursor(fact_lines, *arguments)
                while lines := await facts_cursor.fetch(10_000):
                    hasher.add_all([line for (line,) in lines])
            with_facts = hasher.copy()
            contributions_copied = _CopiedLines(hasher)
            # Read to the end even once escaped: a COPY cancelled halfway leaves its
            # connection busy until the server has answered.
            while (chunk := await chunks.get()) is not _END:
                await contributions_copied.take(chunk)
            await copying
        finally:
            if not copying.done():  # something failed: the transaction is lost anyway
                copying.cancel()
                await asyncio.gather(copying, return_exceptions=True)
        if not contributions_copied.escaped:
            return hasher.hexdigest()
        # The slow way, from the state after the facts.
        cursor = await facts_driver.cursor(_CONTRIBUTION_PREFIXES.format(tenant=where), *arguments)
        while rows := await cursor.fetch(10_000):
            with_facts.add_all(
                [
                    contribution_text_from_prefix(prefix, raw_points, points, voided)
                    for prefix, raw_points, points, voided in rows
                ]
            )
    return with_facts.hexdigest()


class _CopiedLines:
    """Hashes the chunks of a COPY of digest lines as they come, until one holds a line
    COPY escaped (see `generation_digest`): `escaped` then says the hash is to be thrown
    away and the lines read the slow way."""

    def __init__(self, hasher: DigestHasher) -> None:
        self.hasher = hasher
        self.escaped = False

    async def take(self, chunk: bytes) -> None:  # asyncpg's COPY output calls a coroutine
        self.escaped = self.escaped or b"\\" in chunk
        if not self.escaped:
            self.hasher.add_terminated(chunk)
