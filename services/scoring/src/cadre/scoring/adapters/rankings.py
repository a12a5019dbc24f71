"""Unit rankings in Redis sorted sets, one per generation, tenant, period and unit path.

A set is built from PostgreSQL the first time it is read (or again after Redis lost it)
and kept current afterwards: when a batch changes a cadre's contributions, the cadre's
new composite is written to the sets that already exist for the periods and the units
above it. Sets expire after `ttl_s`, which also bounds how stale a set can be if a build
raced a write."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from cadre.events.units import ancestor_paths, in_subtree
from cadre.events.vocabulary import Dimension
from cadre.scoring.adapters.tables import contributions, members
from cadre.scoring.domain.ruleset import Ruleset

CadreKey = tuple[str, str]


def ranking_key(generation: int, tenant: str, period: str, unit_path: str) -> str:
    return f"scoring:g{generation}:{tenant}:rank:{period}:{unit_path}"


@dataclass
class CompositeUpdates:
    """New composites by cadre and period, and the unit path each cadre ranks under."""

    composites: dict[CadreKey, dict[str, float]] = field(default_factory=dict)
    unit_paths: dict[CadreKey, str] = field(default_factory=dict)


class RankingCache:
    def __init__(self, redis: Redis, ttl_s: int = 3600) -> None:
        self.redis = redis
        self.ttl_s = ttl_s

    async def write_through(
        self, generation: int, updates: CompositeUpdates, membership_changed: set[str]
    ) -> None:
        for tenant in membership_changed:
            await self.invalidate_tenant(generation, tenant)
        async with self.redis.pipeline(transaction=False) as pipe:
            for (tenant, cadre), by_period in updates.composites.items():
                path = updates.unit_paths.get((tenant, cadre))
                if path is None:
                    continue  # not registered (yet): in no unit's ranking
                for unit_path in ancestor_paths(path):
                    for period, value in by_period.items():
                        # XX: only sets somebody has read (and so built) are kept current.
                        pipe.zadd(
                            ranking_key(generation, tenant, period, unit_path),
                            {cadre: value},
                            xx=True,
                        )
            await pipe.execute()

    async def invalidate_tenant(self, generation: int, tenant: str) -> None:
        pattern = ranking_key(generation, tenant, "*", "")
        async for key in self.redis.scan_iter(match=pattern + "*", count=500):
            await self.redis.delete(key)

    async def drop_generation(self, generation: int) -> None:
        async for key in self.redis.scan_iter(match=f"scoring:g{generation}:*", count=500):
            await self.redis.delete(key)

    async def read(
        self,
        session: AsyncSession,
        generation: int,
        tenant: str,
        unit_path: str,
        period: str,
        bounds: tuple[date, date],
        ruleset: Ruleset,
    ) -> tuple[list[tuple[str, float]], bool]:
        """Every member's composite, best first (ties by cadre id), and whether the set
        had to be rebuilt from PostgreSQL."""
        key = ranking_key(generation, tenant, period, unit_path)
        cached: Any = await self.redis.zrange(key, 0, -1, withscores=True)
        pairs = [(_text(member), float(score)) for member, score in cached]
        rebuilt = False
        if not pairs:
            scores = await composites_from_store(
                session, generation, tenant, unit_path, bounds, ruleset.weights
            )
            if scores:
                temporary = f"{key}:building"
                async with self.redis.pipeline(transaction=True) as pipe:
                    pipe.delete(temporary)
                    pipe.zadd(temporary, scores)
                    pipe.expire(temporary, self.ttl_s)
                    pipe.rename(temporary, key)
                    await pipe.execute()
            pairs = list(scores.items())
            rebuilt = True
        return sorted(pairs, key=lambda item: (-item[1], item[0])), rebuilt


def _text(member: bytes | str) -> str:
    return member.decode() if isinstance(member, bytes) else member


async def composites_from_store(
    session: AsyncSession,
    generation: int,
    tenant: str,
    unit_path: str,
    bounds: tuple[date, date],
    weights: Mapping[Dimension, float],
) -> dict[str, float]:
    """Each active member of the subtree's composite over `bounds` (0 without points)."""
    start, end = bounds
    per_dimension = (
        sa.select(
            contributions.c.cadre_id,
            contributions.c.dimension,
            sa.func.sum(contributions.c.points).label("points"),
        )
        .where(
            contributions.c.generation == generation,
            contributions.c.tenant == tenant,
            contributions.c.day.between(start, end),
        )
        .group_by(contributions.c.cadre_id, contributions.c.dimension)
        .subquery()
    )
    rows = await session.execute(
        sa.select(members.c.cadre_id, per_dimension.c.dimension, per_dimension.c.points)
        .select_from(
            members.outerjoin(per_dimension, per_dimension.c.cadre_id == members.c.cadre_id)
        )
        .where(
            members.c.generation == generation,
            members.c.tenant == tenant,
            members.c.active.is_(True),
            in_subtree(members.c.unit_path, unit_path),
        )
    )
    scores: dict[str, float] = {}
    for cadre, dimension, points in rows:
        scores.setdefault(cadre, 0.0)
        if dimension is not None:
            scores[cadre] += weights[Dimension(dimension)] * points
    return {cadre: round(value, 6) for cadre, value in scores.items()}
