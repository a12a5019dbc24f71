"""Folds events into one generation of the projection: the directory as scoring needs it,
the fact rows (the counters) and, for every cadre a batch touches, the contributions
recomputed from all of that cadre's facts under the tenant's ruleset.

Instances share the work by partition, but one cadre's events arrive on several topics and
so possibly at several instances: the recompute takes a per-cadre advisory lock, and reads
the facts only once it holds it, so the last writer always sees every committed fact."""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cadre.events.catalogue import (
    AnyEvent,
    CadreDeactivated,
    CadreRegistered,
    CadreTransferred,
    CadreUpdated,
    UnitCreated,
    WorkdayOverridden,
)
from cadre.events.consumer import KafkaRecordLike
from cadre.events.db import copy_rows
from cadre.events.vocabulary import Dimension, LeaderLevel
from cadre.scoring.adapters.generations import partition_name
from cadre.scoring.adapters.rankings import CompositeUpdates, RankingCache
from cadre.scoring.adapters.rulesets import RulesetBook
from cadre.scoring.adapters.tables import contributions, facts, members, units, workday_overrides
from cadre.scoring.domain.contributions import Contribution
from cadre.scoring.domain.contributions import contributions as derive_contributions
from cadre.scoring.domain.facts import Fact, Metric, facts_of, may_yield_facts
from cadre.scoring.domain.periods import period_bounds, periods_containing
from cadre.scoring.domain.ruleset import Ruleset

CadreKey = tuple[str, str]  # (tenant, cadre_id)


# One statement for any number of facts, prepared once: column arrays instead of a
# multi-row VALUES, which costs a bind parameter per field and a plan per batch size.
# Tags travel as JSON text, since PostgreSQL arrays cannot be ragged.
_INSERT_FACTS = sa.text(
    """
    INSERT INTO facts (generation, tenant, event_id, metric, cadre_id, day, at, key,
                       dimension, amount, level, positive, tags, revision, target)
    SELECT :generation, r.tenant, r.event_id, r.metric, r.cadre_id, r.day, r.at, r.key,
           r.dimension, r.amount, r.level, r.positive,
           CASE WHEN r.tags = '[]' THEN '{}'::text[]
                ELSE ARRAY(SELECT jsonb_array_elements_text(r.tags::jsonb)) END,
           r.revision, r.target
    FROM unnest(CAST(:tenants AS text[]), CAST(:event_ids AS uuid[]), CAST(:metrics AS text[]),
                CAST(:cadre_ids AS text[]), CAST(:days AS date[]),
                CAST(:ats AS timestamptz[]), CAST(:keys AS text[]),
                CAST(:dimensions AS text[]), CAST(:amounts AS float8[]),
                CAST(:levels AS text[]), CAST(:positives AS boolean[]),
                CAST(:tags AS text[]), CAST(:revisions AS int[]), CAST(:targets AS uuid[]))
         AS r(tenant, event_id, metric, cadre_id, day, at, key, dimension, amount, level,
              positive, tags, revision, target)
    ON CONFLICT DO NOTHING
    """
)
_INSERT_CONTRIBUTIONS = sa.text(
    """
    INSERT INTO contributions (generation, tenant, cadre_id, event_id, rule, dimension, day,
                               raw_points, points, voided)
    SELECT :generation, r.tenant, r.cadre_id, r.event_id, r.rule, r.dimension, r.day,
           r.raw_points, r.points, r.voided
    FROM unnest(CAST(:tenants AS text[]), CAST(:cadre_ids AS text[]),
                CAST(:event_ids AS uuid[]), CAST(:rules AS text[]),
                CAST(:dimensions AS text[]), CAST(:days AS date[]),
                CAST(:raw_points AS float8[]), CAST(:points AS float8[]),
                CAST(:voided AS boolean[]))
         AS r(tenant, cadre_id, event_id, rule, dimension, day, raw_points, points, voided)
    """
)


def _fact_columns(generation: int, rows: Sequence[tuple[str, Fact]]) -> dict[str, Any]:
    """Parameters of `_INSERT_FACTS` for (tenant, fact) pairs."""
    return {
        "generation": generation,
        "tenants": [tenant for tenant, _ in rows],
        "event_ids": [f.event_id for _, f in rows],
        "metrics": [f.metric.value for _, f in rows],
        "cadre_ids": [f.cadre_id for _, f in rows],
        "days": [f.day for _, f in rows],
        "ats": [f.at for _, f in rows],
        "keys": [f.key for _, f in rows],
        "dimensions": [f.dimension.value if f.dimension else None for _, f in rows],
        "amounts": [float(f.amount) for _, f in rows],
        "levels": [f.level.value if f.level else None for _, f in rows],
        "positives": [f.positive for _, f in rows],
        "tags": [json.dumps(list(f.tags)) if f.tags else "[]" for _, f in rows],
        "revisions": [f.revision for _, f in rows],
        "targets": [f.target for _, f in rows],
    }


def _contribution_columns(
    generation: int, rows: Sequence[tuple[str, Contribution]]
) -> dict[str, Any]:
    """Parameters of `_INSERT_CONTRIBUTIONS` for (tenant, contribution) pairs."""
    return {
        "generation": generation,
        "tenants": [tenant for tenant, _ in rows],
        "cadre_ids": [c.cadre_id for _, c in rows],
        "event_ids": [c.event_id for _, c in rows],
        "rules": [c.rule for _, c in rows],
        "dimensions": [c.dimension.value for _, c in rows],
        "days": [c.day for _, c in rows],
        "raw_points": [float(c.raw_points) for _, c in rows],
        "points": [float(c.points) for _, c in rows],
        "voided": [c.voided for _, c in rows],
    }


_CONTRIBUTION_COLUMNS = (
    "generation", "tenant", "cadre_id", "event_id", "rule", "dimension", "day",
    "raw_points", "points", "voided",
)  # fmt: skip


# The enums are StrEnums, which COPY encodes as the text they are: no `.value` (a Python
# property) per field of millions of rows.
def _contribution_row(generation: int, tenant: str, c: Contribution) -> tuple[Any, ...]:
    """One row for `copy_rows`, in `_CONTRIBUTION_COLUMNS` order."""
    return (
        generation, tenant, c.cadre_id, c.event_id, c.rule, c.dimension, c.day,
        float(c.raw_points), float(c.points), c.voided,
    )  # fmt: skip


# Facts without tags (most) are copied without the column, which defaults to none: asyncpg
# encodes an empty text[] for as long as the rest of the row takes (sco_0005).
_UNTAGGED_FACT_COLUMNS = (
    "generation", "tenant", "event_id", "metric", "cadre_id", "day", "at", "key",
    "dimension", "amount", "level", "positive", "revision", "target",
)  # fmt: skip
_FACT_COLUMNS = (*_UNTAGGED_FACT_COLUMNS, "tags")


def _fact_row(generation: int, tenant: str, f: Fact) -> tuple[Any, ...]:
    """One row for `copy_rows`: in `_FACT_COLUMNS` order, or in `_UNTAGGED_FACT_COLUMNS`
    order for a fact without tags."""
    row = (
        generation, tenant, f.event_id, f.metric, f.cadre_id, f.day, f.at, f.key,
        f.dimension, float(f.amount), f.level, f.positive, f.revision, f.target,
    )  # fmt: skip
    return (*row, list(f.tags)) if f.tags else row


# Enum members by value: a plain lookup, where calling the enum costs a microsecond a row.
_METRICS: dict[str, Metric] = {m.value: m for m in Metric}
_DIMENSIONS: dict[str, Dimension] = {d.value: d for d in Dimension}
_LEVELS: dict[str, LeaderLevel] = {level.value: level for level in LeaderLevel}


def fact_of_row(row: Any) -> Fact:
    return Fact(
        cadre_id=row.cadre_id,
        day=row.day,
        metric=_METRICS[row.metric],
        event_id=row.event_id,
        at=row.at,
        key=row.key,
        dimension=_DIMENSIONS[row.dimension] if row.dimension else None,
        amount=row.amount,
        level=_LEVELS[row.level] if row.level else None,
        positive=row.positive,
        tags=tuple(row.tags),
        revision=row.revision,
        target=row.target,
    )


def contribution_of_row(row: Any) -> Contribution:
    return Contribution(
        cadre_id=row.cadre_id,
        day=row.day,
        dimension=_DIMENSIONS[row.dimension],
        rule=row.rule,
        event_id=row.event_id,
        raw_points=row.raw_points,
        points=row.points,
        voided=row.voided,
    )


def _composite_within(
    items: Iterable[Contribution], bounds: tuple[date, date], ruleset: Ruleset
) -> float:
    start, end = bounds
    return round(
        sum(ruleset.weights[c.dimension] * c.points for c in items if start <= c.day <= end), 6
    )


async def _defer_durability(session: AsyncSession) -> None:
    """A replay's commits need not wait for the disk: a replay that dies is abandoned and
    run again from the log, and the switch to its generation is committed durably."""
    await session.execute(sa.text("SET LOCAL synchronous_commit TO off"))


@dataclass
class BatchEffects:
    """What a batch changed, for the caches and the light sweep."""

    changed_days: dict[CadreKey, set[date]] = field(default_factory=lambda: defaultdict(set))
    membership_changed: set[str] = field(default_factory=set)  # tenants
    composites: CompositeUpdates = field(default_factory=CompositeUpdates)


async def _in_chunks(
    sessions: async_sessionmaker[AsyncSession],
    keys: Sequence[CadreKey],
    chunk: int,
    work: Callable[[AsyncSession, Sequence[CadreKey]], Awaitable[None]],
    on_progress: Callable[[int], None] | None,
) -> None:
    """`work` on `chunk` cadres at a time, each chunk in a transaction of its own whose
    commit does not wait for the disk (a replay's); `on_progress(cadres done)` after each."""
    for start in range(0, len(keys), chunk):
        part = keys[start : start + chunk]
        async with sessions() as session, session.begin():
            await _defer_durability(session)
            await work(session, part)
        if on_progress is not None:
            on_progress(start + len(part))


FactsByEvent = dict[uuid.UUID, tuple[Fact, ...]]  # one cadre's facts, as derivation takes them


def by_event(facts: Iterable[Fact]) -> FactsByEvent:
    """One cadre's facts grouped by event, as derivation takes them. Of repeats (the same
    event and metric twice), the first stays, as ON CONFLICT DO NOTHING keeps in the table."""
    grouped: FactsByEvent = {}
    for fact in facts:
        kept = grouped.get(fact.event_id)
        if kept is None:  # the usual case: an event's first (and only) fact
            grouped[fact.event_id] = (fact,)
        elif all(f.metric is not fact.metric for f in kept):
            grouped[fact.event_id] = (*kept, fact)
    return grouped


_Change = tuple[sa.Executable, dict[str, Any]]


def _upsert(table: sa.Table, key: Sequence[str], columns: Sequence[str]) -> sa.Executable:
    """INSERT of `key` and `columns` (from each parameter set's keys), or their update."""
    statement = insert(table)
    return statement.on_conflict_do_update(
        index_elements=list(key), set_={c: statement.excluded[c] for c in columns}
    )


# A member's key in an UPDATE's parameters: those of its SET clause are the column names.
_MEMBER = sa.and_(
    members.c.generation == sa.bindparam("member_generation"),
    members.c.tenant == sa.bindparam("member_tenant"),
    members.c.cadre_id == sa.bindparam("member_id"),
)


class _Directory:
    """The directory's changes to a generation, one statement each with bound parameters,
    so that a run of the same change is one `executemany` (a replay registers every cadre
    in a row: one statement and round trip each took a twentieth of its fold)."""

    upsert_unit = _upsert(units, ("generation", "tenant", "unit_id"), ("name", "path"))
    upsert_member = _upsert(
        members,
        ("generation", "tenant", "cadre_id"),
        ("name", "unit_id", "unit_path", "stationed", "active"),
    )
    update_member = sa.update(members).where(_MEMBER)  # SET: the other parameters given
    clear_workday = sa.delete(workday_overrides).where(
        workday_overrides.c.generation == sa.bindparam("generation"),
        workday_overrides.c.tenant == sa.bindparam("tenant"),
        workday_overrides.c.day == sa.bindparam("day"),
    )
    set_workday = sa.insert(workday_overrides)


async def _run_changes(session: AsyncSession, changes: Sequence[_Change]) -> None:
    """`changes` in order, each run of the same statement with the same parameter names
    (an UPDATE's SET clause is made from them) as one `executemany`."""

    start = 0
    while start < len(changes):
        statement, first = changes[start]
        names = tuple(first)
        end = start + 1
        while end < len(changes) and (
            changes[end][0] is statement and tuple(changes[end][1]) == names
        ):
            end += 1
        await session.execute(statement, [params for _, params in changes[start:end]])
        start = end


class ScoringProjection:
    def __init__(
        self,
        generation: int,
        rulesets: RulesetBook,
        rankings: RankingCache | None,
        *,
        replaying: bool = False,
    ) -> None:
        self.generation = generation
        self.rulesets = rulesets
        self.rankings = rankings
        # For the light sweep: cadres with new facts or points, and tenants whose
        # membership changed (every unit is re-assessed then).
        self.dirty_cadres: dict[str, set[str]] = defaultdict(set)
        self.dirty_tenants: set[str] = set()
        # A replay holds the facts it folds in memory, per cadre, and derives each cadre's
        # contributions once at the end (`derive_held`), writing facts and contributions
        # with COPY. Deriving after every batch re-read a cadre's whole history each time,
        # which grows with the square of it; writing the facts as they came and reading
        # them back to derive cost PostgreSQL a third of a replay.
        self.replaying = replaying
        # In arrival order, repeats included: grouping by event (and dropping repeats)
        # waits until a cadre is derived, since a dict entry and a tuple per event would
        # be a third of what a held fact costs.
        self.held: dict[CadreKey, list[Fact]] = defaultdict(list)

    @staticmethod
    def self_deduplicating(event: AnyEvent) -> bool:
        """Whether applying `event` twice changes nothing without a dedup record: every
        event but the directory's only adds fact rows, keyed by (generation, event id,
        metric) and inserted with ON CONFLICT DO NOTHING, and re-deriving from unchanged
        facts changes nothing. A directory event overwrites a member, so a late redelivery
        could undo a newer change: those keep their dedup record."""
        return event.source != "directory"

    @staticmethod
    def relevant(event_type: str, value: bytes | None) -> bool:
        """Whether a record can change the projection, before it is validated: the
        directory's events, and those that may be facts (most check-ins are not)."""
        return event_type.startswith("directory.") or may_yield_facts(event_type, value)

    async def apply_batch(
        self, session: AsyncSession, items: Sequence[tuple[AnyEvent, KafkaRecordLike]]
    ) -> None:
        effects = BatchEffects()
        rows: list[tuple[str, Fact]] = []
        # A replay's commits need not wait for the disk; it says so only in a batch that
        # writes (the directory's events), so a batch of facts alone, which it just holds,
        # touches no connection and costs no round trip (three a batch otherwise, a tenth
        # of a replay worker's fold).
        changes: list[_Change] = []
        zones: dict[str, str] = {}  # each tenant's ruleset looked up once a batch
        for event, _ in items:
            tenant = event.tenant
            if event.source == "directory":
                changes.extend(self._directory_changes(event, effects))
                continue
            zone = zones.get(tenant)
            if zone is None:
                zone = zones[tenant] = self.rulesets.for_tenant(tenant).timezone
            for fact in facts_of(event, zone):
                rows.append((tenant, fact))
        if changes:
            if self.replaying:
                await _defer_durability(session)
            await _run_changes(session, changes)
        if self.replaying:  # nobody reads the generation yet: nothing else to write
            self._hold(rows)
            return
        touched = {(tenant, fact.cadre_id) for tenant, fact in rows}
        if rows:
            await session.execute(_INSERT_FACTS, _fact_columns(self.generation, rows))
        if touched:
            await self.recompute(session, touched, effects)
        if self.rankings is not None:
            await self.rankings.write_through(
                self.generation, effects.composites, effects.membership_changed
            )
        for tenant, cadre in touched | effects.changed_days.keys():
            self.dirty_cadres[tenant].add(cadre)
        self.dirty_tenants |= effects.membership_changed

    def _hold(self, rows: Iterable[tuple[str, Fact]]) -> None:
        held = self.held
        for tenant, fact in rows:
            held[(tenant, fact.cadre_id)].append(fact)

    async def release(self, session: AsyncSession, cadres: Iterable[CadreKey]) -> None:
        """Write the held facts of `cadres` to the table and forget them: another replay
        process holds facts of these cadres too, so they are derived from the table."""
        rows: list[tuple[str, Fact]] = []
        for tenant, cadre in cadres:
            rows.extend((tenant, fact) for fact in self.held.pop((tenant, cadre), []))
        if rows:  # repeats included: ON CONFLICT keeps the first
            await _defer_durability(session)
            await session.execute(_INSERT_FACTS, _fact_columns(self.generation, rows))

    async def derive_held(
        self,
        sessions: async_sessionmaker[AsyncSession],
        chunk: int = 500,
        on_progress: Callable[[int], None] | None = None,
    ) -> None:
        """Write the held facts and the contributions derived from them, `chunk` cadres per
        transaction, forgetting each chunk once written; `on_progress(cadres done)` after
        each. The generation holds no facts or contributions of these cadres yet, and
        nobody reads it yet, so the rows are copied in and there is no ranking set to
        write through."""

        async def write(session: AsyncSession, part: Sequence[CadreKey]) -> None:
            state = {key: by_event(self.held.pop(key)) for key in part}
            untagged: list[tuple[Any, ...]] = []
            tagged: list[tuple[Any, ...]] = []
            for key in part:
                for facts_of_event in state[key].values():
                    for fact in facts_of_event:
                        row = _fact_row(self.generation, key[0], fact)
                        (tagged if fact.tags else untagged).append(row)
            partition = partition_name("facts", self.generation)  # straight in, not routed
            for columns, rows in ((_UNTAGGED_FACT_COLUMNS, untagged), (_FACT_COLUMNS, tagged)):
                if rows:
                    await copy_rows(session, partition, columns, rows)
            await self._copy_derived(session, part, state)

        await _in_chunks(sessions, sorted(self.held), chunk, write, on_progress)

    async def derive_stored(
        self,
        sessions: async_sessionmaker[AsyncSession],
        cadres: Sequence[CadreKey],
        chunk: int = 500,
        on_progress: Callable[[int], None] | None = None,
    ) -> None:
        """`derive_held` for cadres whose facts are in the table (see `release`)."""

        async def derive(session: AsyncSession, part: Sequence[CadreKey]) -> None:
            await self.recompute(session, part, BatchEffects(), fresh=True)

        await _in_chunks(sessions, sorted(cadres), chunk, derive, on_progress)

    async def _copy_derived(
        self,
        session: AsyncSession,
        keys: Sequence[CadreKey],
        state: Mapping[CadreKey, FactsByEvent],
    ) -> None:
        rows = [
            _contribution_row(self.generation, tenant, c)
            for tenant, cadre in keys
            for c in derive_contributions(  # each once: see its tests
                state.get((tenant, cadre), {}), self.rulesets.for_tenant(tenant)
            )
        ]
        table = partition_name("contributions", self.generation)
        await copy_rows(session, table, _CONTRIBUTION_COLUMNS, rows)

    async def recompute(
        self,
        session: AsyncSession,
        cadres: Iterable[CadreKey],
        effects: BatchEffects,
        *,
        fresh: bool = False,
    ) -> None:
        """Derive the contributions of `cadres` afresh from all their facts. `fresh`: the
        cadres have no contributions yet and nobody reads the generation yet (a replay
        deriving each cadre once), so there is nothing to read back, delete or report."""
        keys = sorted(set(cadres))
        gen = self.generation
        await session.execute(
            sa.text(
                "SELECT pg_advisory_xact_lock(hashtextextended(k, 0))"
                " FROM unnest(CAST(:keys AS text[])) AS k ORDER BY k"
            ),
            {"keys": [f"scoring:{gen}:{tenant}:{cadre}" for tenant, cadre in keys]},
        )
        pairs = sa.select(
            sa.func.unnest(sa.cast([t for t, _ in keys], sa.ARRAY(sa.Text))).label("tenant"),
            sa.func.unnest(sa.cast([c for _, c in keys], sa.ARRAY(sa.Text))).label("cadre_id"),
        ).subquery()
        fact_rows = await session.execute(
            sa.select(facts)
            .join(
                pairs,
                sa.and_(facts.c.tenant == pairs.c.tenant, facts.c.cadre_id == pairs.c.cadre_id),
            )
            .where(facts.c.generation == gen)
        )
        stored: dict[CadreKey, list[Fact]] = defaultdict(list)
        for row in fact_rows:
            stored[(row.tenant, row.cadre_id)].append(fact_of_row(row))
        state = defaultdict(dict, {key: by_event(group) for key, group in stored.items()})
        if fresh:
            await self._copy_derived(session, keys, state)
            return

        old_rows = await session.execute(
            sa.select(contributions)
            .join(
                pairs,
                sa.and_(
                    contributions.c.tenant == pairs.c.tenant,
                    contributions.c.cadre_id == pairs.c.cadre_id,
                ),
            )
            .where(contributions.c.generation == gen)
        )
        old: dict[CadreKey, set[Contribution]] = defaultdict(set)
        for row in old_rows:
            old[(row.tenant, row.cadre_id)].add(contribution_of_row(row))

        paths = await session.execute(
            sa.select(members.c.tenant, members.c.cadre_id, members.c.unit_path)
            .join(
                pairs,
                sa.and_(members.c.tenant == pairs.c.tenant, members.c.cadre_id == pairs.c.cadre_id),
            )
            .where(members.c.generation == gen)
        )
        for tenant, cadre, unit_path in paths:
            effects.composites.unit_paths[(tenant, cadre)] = unit_path

        new_rows: list[tuple[str, Contribution]] = []
        for tenant, cadre in keys:
            ruleset = self.rulesets.for_tenant(tenant)
            derived = set(derive_contributions(state[(tenant, cadre)], ruleset))
            new_rows.extend((tenant, c) for c in derived)
            changed = derived ^ old[(tenant, cadre)]
            if changed:
                days = {c.day for c in changed}
                effects.changed_days[(tenant, cadre)].update(days)
                periods = {p for day in days for p in periods_containing(day)}
                effects.composites.composites[(tenant, cadre)] = {
                    period: _composite_within(derived, period_bounds(period), ruleset)
                    for period in periods
                }
        await session.execute(
            sa.delete(contributions).where(
                contributions.c.generation == gen,
                sa.tuple_(contributions.c.tenant, contributions.c.cadre_id).in_(keys),
            )
        )
        if new_rows:
            await session.execute(_INSERT_CONTRIBUTIONS, _contribution_columns(gen, new_rows))

    def _directory_changes(self, event: AnyEvent, effects: BatchEffects) -> list[_Change]:
        """What a directory event changes, as statements of `_Directory` with their
        parameters; `apply_batch` runs them in order."""
        generation, tenant = self.generation, event.tenant
        where = {"generation": generation, "tenant": tenant}

        def member(cadre_id: str) -> dict[str, Any]:
            return {"member_generation": generation, "member_tenant": tenant, "member_id": cadre_id}

        match event:
            case UnitCreated(data=data):
                unit = {"unit_id": data.unit_id, "name": data.name, "path": data.path}
                return [(_Directory.upsert_unit, {**where, **unit})]
            case CadreRegistered(data=data):
                effects.membership_changed.add(tenant)
                registered = {
                    "cadre_id": data.cadre_id,
                    "name": data.name,
                    "unit_id": data.unit_id,
                    "unit_path": event.unit_path,
                    "stationed": data.stationed,
                    "active": True,
                }
                return [(_Directory.upsert_member, {**where, **registered})]
            case CadreUpdated(data=data):
                details = {"name": data.name, "stationed": data.stationed}
                return [(_Directory.update_member, {**member(data.cadre_id), **details})]
            case CadreTransferred(data=data):
                effects.membership_changed.add(tenant)
                moved = {"unit_id": data.to_unit_id, "unit_path": data.to_unit_path}
                return [(_Directory.update_member, {**member(data.cadre_id), **moved})]
            case CadreDeactivated(data=data):
                effects.membership_changed.add(tenant)
                return [(_Directory.update_member, {**member(data.cadre_id), "active": False})]
            case WorkdayOverridden(data=data):
                day = {**where, "day": data.day}
                changes: list[_Change] = [(_Directory.clear_workday, day)]
                if data.workday is not None:
                    changes.append((_Directory.set_workday, {**day, "workday": data.workday}))
                return changes
            case _:
                return []  # roles and geofences do not affect scores
