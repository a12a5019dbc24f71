"""Folds events into one generation of the projection: the directory as scoring needs it,
the fact rows (the counters) and, for every cadre a batch touches, the contributions
recomputed from all of that cadre's facts under the tenant's ruleset.

Instances share the work by partition, but one cadre's events arrive on several topics and
so possibly at several instances: the recompute takes a per-cadre advisory lock, and reads
the facts only once it holds it, so the last writer always sees every committed fact."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
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
from cadre.events.consumer import InboundRecord
from cadre.events.vocabulary import Dimension, LeaderLevel
from cadre.scoring.adapters.rankings import CompositeUpdates, RankingCache
from cadre.scoring.adapters.rulesets import RulesetBook
from cadre.scoring.adapters.tables import contributions, facts, members, units, workday_overrides
from cadre.scoring.domain.contributions import Contribution
from cadre.scoring.domain.contributions import contributions as derive_contributions
from cadre.scoring.domain.facts import Fact, Metric, facts_of
from cadre.scoring.domain.periods import period_bounds, periods_containing
from cadre.scoring.domain.ruleset import Ruleset

CadreKey = tuple[str, str]  # (tenant, cadre_id)


def fact_row(generation: int, tenant: str, fact: Fact) -> dict[str, Any]:
    return {
        "generation": generation,
        "tenant": tenant,
        "event_id": fact.event_id,
        "metric": fact.metric.value,
        "cadre_id": fact.cadre_id,
        "day": fact.day,
        "at": fact.at,
        "key": fact.key,
        "dimension": fact.dimension.value if fact.dimension else None,
        "amount": fact.amount,
        "level": fact.level.value if fact.level else None,
        "positive": fact.positive,
        "tags": list(fact.tags),
        "revision": fact.revision,
        "target": fact.target,
    }


def fact_of_row(row: Any) -> Fact:
    return Fact(
        cadre_id=row.cadre_id,
        day=row.day,
        metric=Metric(row.metric),
        event_id=row.event_id,
        at=row.at,
        key=row.key,
        dimension=Dimension(row.dimension) if row.dimension else None,
        amount=row.amount,
        level=LeaderLevel(row.level) if row.level else None,
        positive=row.positive,
        tags=tuple(row.tags),
        revision=row.revision,
        target=row.target,
    )


def contribution_of_row(row: Any) -> Contribution:
    return Contribution(
        cadre_id=row.cadre_id,
        day=row.day,
        dimension=Dimension(row.dimension),
        rule=row.rule,
        event_id=row.event_id,
        raw_points=row.raw_points,
        points=row.points,
        voided=row.voided,
    )


def _contribution_row(generation: int, tenant: str, item: Contribution) -> dict[str, Any]:
    return {
        "generation": generation,
        "tenant": tenant,
        "cadre_id": item.cadre_id,
        "event_id": item.event_id,
        "rule": item.rule,
        "dimension": item.dimension.value,
        "day": item.day,
        "raw_points": item.raw_points,
        "points": item.points,
        "voided": item.voided,
    }


def _composite_within(
    items: Iterable[Contribution], bounds: tuple[date, date], ruleset: Ruleset
) -> float:
    start, end = bounds
    return round(
        sum(ruleset.weights[c.dimension] * c.points for c in items if start <= c.day <= end), 6
    )


@dataclass
class BatchEffects:
    """What a batch changed, for the caches and the light sweep."""

    changed_days: dict[CadreKey, set[date]] = field(default_factory=lambda: defaultdict(set))
    membership_changed: set[str] = field(default_factory=set)  # tenants
    composites: CompositeUpdates = field(default_factory=CompositeUpdates)

    @property
    def tenants(self) -> set[str]:
        return {tenant for tenant, _ in self.changed_days} | self.membership_changed


class ScoringProjection:
    def __init__(
        self,
        generation: int,
        rulesets: RulesetBook,
        rankings: RankingCache | None,
        *,
        defer_derivation: bool = False,
    ) -> None:
        self.generation = generation
        self.rulesets = rulesets
        self.rankings = rankings
        self.dirty_tenants: set[str] = set()  # for the light sweep
        # A replay only folds facts while it catches up and derives each cadre's
        # contributions once at the end (`derive_pending`): deriving after every batch
        # re-reads a cadre's whole history each time, which grows with the square of it.
        self.defer_derivation = defer_derivation
        self.pending: set[CadreKey] = set()

    async def apply_batch(
        self, session: AsyncSession, items: Sequence[tuple[AnyEvent, InboundRecord]]
    ) -> None:
        effects = BatchEffects()
        rows: list[dict[str, Any]] = []
        touched: set[CadreKey] = set()
        for event, _ in items:
            if event.source == "directory":
                await self._apply_directory(session, event, effects)
                continue
            timezone = self.rulesets.for_tenant(event.tenant).timezone
            for fact in facts_of(event, timezone):
                rows.append(fact_row(self.generation, event.tenant, fact))
                touched.add((event.tenant, fact.cadre_id))
        for start in range(0, len(rows), 1000):  # stay well under the bind-parameter limit
            await session.execute(
                insert(facts).on_conflict_do_nothing(), rows[start : start + 1000]
            )
        if self.defer_derivation:
            self.pending |= touched
        else:
            if touched:
                await self.recompute(session, touched, effects)
            if self.rankings is not None:
                await self.rankings.write_through(
                    self.generation, effects.composites, effects.membership_changed
                )
        self.dirty_tenants |= effects.tenants

    async def derive_pending(
        self, sessions: async_sessionmaker[AsyncSession], chunk: int = 500
    ) -> None:
        """Derive the contributions of every cadre folded while deferring, `chunk` cadres
        per transaction."""
        keys = sorted(self.pending)
        for start in range(0, len(keys), chunk):
            effects = BatchEffects()
            async with sessions() as session, session.begin():
                await self.recompute(session, keys[start : start + chunk], effects)
            if self.rankings is not None:
                await self.rankings.write_through(
                    self.generation, effects.composites, effects.membership_changed
                )
        self.pending.clear()

    async def recompute(
        self, session: AsyncSession, cadres: Iterable[CadreKey], effects: BatchEffects
    ) -> None:
        """Derive the contributions of `cadres` afresh from all their facts."""
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
        state: dict[CadreKey, dict[uuid.UUID, tuple[Fact, ...]]] = defaultdict(dict)
        for row in fact_rows:
            group = state[(row.tenant, row.cadre_id)]
            group[row.event_id] = (*group.get(row.event_id, ()), fact_of_row(row))
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

        new_rows: list[dict[str, Any]] = []
        for tenant, cadre in keys:
            ruleset = self.rulesets.for_tenant(tenant)
            derived = set(derive_contributions(state[(tenant, cadre)], ruleset))
            changed = derived ^ old[(tenant, cadre)]
            if changed:
                days = {c.day for c in changed}
                effects.changed_days[(tenant, cadre)].update(days)
                periods = {p for day in days for p in periods_containing(day)}
                effects.composites.composites[(tenant, cadre)] = {
                    period: _composite_within(derived, period_bounds(period), ruleset)
                    for period in periods
                }
            new_rows.extend(_contribution_row(gen, tenant, c) for c in derived)
        await session.execute(
            sa.delete(contributions).where(
                contributions.c.generation == gen,
                sa.tuple_(contributions.c.tenant, contributions.c.cadre_id).in_(keys),
            )
        )
        for start in range(0, len(new_rows), 1000):
            await session.execute(sa.insert(contributions), new_rows[start : start + 1000])

    async def _apply_directory(
        self, session: AsyncSession, event: AnyEvent, effects: BatchEffects
    ) -> None:
        gen, tenant = self.generation, event.tenant
        values: dict[str, Any]
        match event:
            case UnitCreated(data=data):
                values = {"name": data.name, "path": data.path}
                await session.execute(
                    insert(units)
                    .values(generation=gen, tenant=tenant, unit_id=data.unit_id, **values)
                    .on_conflict_do_update(
                        index_elements=["generation", "tenant", "unit_id"], set_=values
                    )
                )
            case CadreRegistered(data=data):
                values = {
                    "name": data.name,
                    "unit_id": data.unit_id,
                    "unit_path": event.unit_path,
                    "stationed": data.stationed,
                    "active": True,
                }
                await session.execute(
                    insert(members)
                    .values(generation=gen, tenant=tenant, cadre_id=data.cadre_id, **values)
                    .on_conflict_do_update(
                        index_elements=["generation", "tenant", "cadre_id"], set_=values
                    )
                )
                effects.membership_changed.add(tenant)
            case CadreUpdated(data=data):
                await self._update_member(
                    session, tenant, data.cadre_id, name=data.name, stationed=data.stationed
                )
            case CadreTransferred(data=data):
                await self._update_member(
                    session,
                    tenant,
                    data.cadre_id,
                    unit_id=data.to_unit_id,
                    unit_path=data.to_unit_path,
                )
                effects.membership_changed.add(tenant)
            case CadreDeactivated(data=data):
                await self._update_member(session, tenant, data.cadre_id, active=False)
                effects.membership_changed.add(tenant)
            case WorkdayOverridden(data=data):
                where = (
                    workday_overrides.c.generation == gen,
                    workday_overrides.c.tenant == tenant,
                    workday_overrides.c.day == data.day,
                )
                await session.execute(sa.delete(workday_overrides).where(*where))
                if data.workday is not None:
                    await session.execute(
                        sa.insert(workday_overrides).values(
                            generation=gen, tenant=tenant, day=data.day, workday=data.workday
                        )
                    )
            case _:
                pass  # roles and geofences do not affect scores

    async def _update_member(
        self, session: AsyncSession, tenant: str, cadre_id: str, **values: Any
    ) -> None:
        await session.execute(
            sa.update(members)
            .where(
                members.c.generation == self.generation,
                members.c.tenant == tenant,
                members.c.cadre_id == cadre_id,
            )
            .values(**values)
        )
